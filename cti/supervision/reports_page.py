"""Call reports: ``GET /api/reports/calls`` (JSON or CSV) and the page ``/supervision/reports`` that shows them.

Days are the desk's (``[supervision] timezone``): a report from 2025-03-01 to 2025-03-07 covers those seven
local days whole. Figures and the staffing suggestion are described in :mod:`cti.supervision.reports`.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from cti.acd.service import AcdService
from cti.db import Database
from cti.db.base import utcnow
from cti.http.auth import page, requires
from cti.http.errors import answers
from cti.http.identity import identity_of
from cti.settings import SupervisionSettings
from cti.supervision.pages import SUPERVISORS, render_page
from cti.supervision.reports import GROUPS, ReportInvalid, build_report, day_bounds, load_calls, parse_query, report_csv
from cti.web.i18n import pick_language, register_messages, translator

REPORTS_KEY: web.AppKey[Reports] = web.AppKey("supervision_reports")

MESSAGES: dict[str, dict[str, str]] = {
    "reports.title": {"en": "Call reports", "fr": "Rapports d'appels"},
    "reports.from": {"en": "From", "fr": "Du"},
    "reports.to": {"en": "To", "fr": "Au"},
    "reports.group": {"en": "Group by", "fr": "Regrouper par"},
    "reports.group.hour": {"en": "Hour", "fr": "Heure"},
    "reports.group.day": {"en": "Day", "fr": "Jour"},
    "reports.group.number": {"en": "Number called", "fr": "Numéro appelé"},
    "reports.group.queue": {"en": "Queue", "fr": "File d'attente"},
    "reports.show": {"en": "Show", "fr": "Afficher"},
    "reports.csv": {"en": "Download CSV", "fr": "Télécharger en CSV"},
    "reports.calls": {"en": "Calls", "fr": "Appels"},
    "reports.none": {"en": "No calls in this period.", "fr": "Aucun appel sur cette période."},
    "reports.no_queue": {"en": "(no queue)", "fr": "(sans file)"},
    "reports.total": {"en": "Total", "fr": "Total"},
    "reports.col.offered": {"en": "Offered", "fr": "Reçus"},
    "reports.col.answered": {"en": "Answered", "fr": "Répondus"},
    "reports.col.abandoned": {"en": "Abandoned", "fr": "Abandonnés"},
    "reports.col.voicemail": {"en": "Voicemail", "fr": "Messagerie"},
    "reports.col.closed": {"en": "Closed", "fr": "Fermé"},
    "reports.col.other": {"en": "Other", "fr": "Autres"},
    "reports.col.service_level_pct": {"en": "Service level %", "fr": "Niveau de service %"},
    "reports.col.abandon_rate_pct": {"en": "Abandon rate %", "fr": "Taux d'abandon %"},
    "reports.col.asa_s": {"en": "ASA (s)", "fr": "Attente moy. (s)"},
    "reports.col.aht_s": {"en": "AHT (s)", "fr": "Durée moy. (s)"},
    "reports.staffing": {"en": "Staffing suggestion (Erlang C)", "fr": "Effectif conseillé (Erlang C)"},
    "reports.staffing.intro": {
        "en": "Per hour of day, from the queued calls of the period averaged over {days} day(s): "
              "agents needed for {level} % answered within {within} s.",
        "fr": "Par heure de la journée, d'après les appels mis en file sur la période, en moyenne sur {days} jour(s) : "
              "agents nécessaires pour {level} % de réponses en moins de {within} s."},
    "reports.staffing.hour": {"en": "Hour", "fr": "Heure"},
    "reports.staffing.calls": {"en": "Calls per hour", "fr": "Appels par heure"},
    "reports.staffing.aht": {"en": "AHT (s)", "fr": "Durée moy. (s)"},
    "reports.staffing.agents": {"en": "Agents on the phones", "fr": "Agents au téléphone"},
    "reports.staffing.scheduled": {"en": "Agents scheduled", "fr": "Agents planifiés"},
    "reports.staffing.level": {"en": "Expected service level %", "fr": "Niveau de service attendu %"},
    "reports.staffing.none": {"en": "No queued calls to size from.", "fr": "Aucun appel en file pour dimensionner."},
    "reports.error": {"en": "The report could not be made: {message}", "fr": "Rapport impossible : {message}"},
}  # fmt: skip
register_messages(MESSAGES)


class Reports:
    """What the report routes read: the calls table, the queues' targets (from the live ACD) and the settings."""

    def __init__(self, db: Database, acd: AcdService | None, settings: SupervisionSettings) -> None:
        self.db, self.acd, self.settings = db, acd, settings
        self.zone = ZoneInfo(settings.timezone)

    def today(self) -> date:
        """The desk's date now: the default range of a report."""
        return utcnow().astimezone(self.zone).date()

    async def report(self, query: dict[str, str]) -> dict[str, Any]:
        parsed = parse_query(query, self.today())
        calls = await load_calls(self.db, *day_bounds(parsed.first, parsed.last, self.zone))
        return build_report(calls, parsed, self.settings, self.service_levels())

    def service_levels(self) -> dict[str, int]:
        queues = self.acd.queues if self.acd is not None else {}
        return {name: queue.service_level_s for name, queue in queues.items()}


@requires(*SUPERVISORS)
@answers((ReportInvalid, 400))
async def calls_report(request: web.Request) -> web.StreamResponse:
    """Calls between ``from`` and ``to`` (YYYY-MM-DD, the desk's days, both included; default today) grouped
    by ``group`` (hour, day, number, queue): offered, answered, abandoned, voicemail, closed, other, service
    level, abandon rate, ASA, AHT, and an Erlang C staffing suggestion per hour of day.
    ``format=csv`` answers the rows as a CSV file."""
    report = await request.app[REPORTS_KEY].report(dict(request.query))
    if request.query.get("format") != "csv":
        return web.json_response(report)
    name = f"calls-{report['from']}-{report['to']}-{report['group']}.csv"
    return web.Response(text=report_csv(report), content_type="text/csv", charset="utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})


@page
@requires(*SUPERVISORS)
async def reports_page(request: web.Request) -> web.StreamResponse:
    """The reports page: a date range form, the tables and the CSV link (filled by reports.js)."""
    reports = request.app[REPORTS_KEY]
    lang = pick_language(request, identity_of(request))
    t = translator(lang)
    today = reports.today().isoformat()
    config = {"messages": {key: t(key) for key in MESSAGES}, "today": today, "lang": lang}
    return render_page(request, "reports.html", "reports", today=today, groups=GROUPS, config=config)


def add_routes(app: web.Application, reports: Reports) -> None:
    app[REPORTS_KEY] = reports
    app.router.add_get("/api/reports/calls", calls_report)
    app.router.add_get("/supervision/reports", reports_page)
