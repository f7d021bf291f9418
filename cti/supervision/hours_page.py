"""``GET /supervision/hours``: one service number's opening hours, editable, with its manual override and the
state callers meet right now.

The page is rendered with the stored document; its script (``static/hours.js``) builds the same document from
the form and saves it through the IVR API (``PUT /api/ivr/services/{number}/hours``, ``PUT``/``DELETE
.../override``). The API is the only judge of what is valid: its reasons come back with their paths
(``weekly.monday[1]``, ``dated[0].label``) and are shown next to the field that holds them.
"""

from __future__ import annotations

import functools
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import holidays
from aiohttp import web

from cti.http.auth import page, requires
from cti.http.identity import IDENTITY
from cti.ivr.schedule_parse import DAY_NAMES
from cti.ivr.service import IvrService
from cti.ivr.store import StoredService
from cti.supervision.ivr_data import IVR_PAGES_KEY, choices, chosen, stored_services, wall_time, zone_name
from cti.supervision.pages import SUPERVISORS, render_page
from cti.web.i18n import pick_language, register_messages, translator

DEFAULT_OVERRIDE = timedelta(hours=1)
UPCOMING_HOLIDAYS = 6
STATUSES = ("open", "closed", "holiday", "override_open", "override_closed")

MESSAGES: dict[str, dict[str, str]] = {
    "hours.title": {"en": "Opening hours", "fr": "Horaires d'ouverture"},
    "hours.number": {"en": "Service number", "fr": "Numéro de service"},
    "hours.show": {"en": "Show", "fr": "Afficher"},
    "hours.none": {"en": "No service number yet: import one first (cti ivr import).",
                   "fr": "Aucun numéro de service : importez-en un d'abord (cti ivr import)."},
    "hours.not_configured": {"en": "This number has no opening hours yet: it is always open. Save hours to "
                                   "set them (and to allow an override).",
                             "fr": "Ce numéro n'a pas encore d'horaires : il est toujours ouvert. Enregistrez des "
                                   "horaires pour en définir (et pouvoir forcer l'état)."},
    "hours.status": {"en": "Now", "fr": "En ce moment"},
    "hours.status.open": {"en": "Open", "fr": "Ouvert"},
    "hours.status.closed": {"en": "Closed", "fr": "Fermé"},
    "hours.status.holiday": {"en": "Closed (holiday)", "fr": "Fermé (jour férié)"},
    "hours.status.override_open": {"en": "Open (manual override)", "fr": "Ouvert (forçage manuel)"},
    "hours.status.override_closed": {"en": "Closed (manual override)", "fr": "Fermé (forçage manuel)"},
    "hours.next_change": {"en": "Changes at {when}", "fr": "Change le {when}"},
    "hours.no_change": {"en": "No change within a year", "fr": "Aucun changement d'ici un an"},
    "hours.zone_note": {"en": "Times are in the service's time zone ({zone}).",
                        "fr": "Les heures sont dans le fuseau du service ({zone})."},
    "hours.override": {"en": "Manual override", "fr": "Forçage manuel"},
    "hours.override.none": {"en": "Follow the hours", "fr": "Suivre les horaires"},
    "hours.override.open": {"en": "Open now", "fr": "Ouvert maintenant"},
    "hours.override.closed": {"en": "Closed now", "fr": "Fermé maintenant"},
    "hours.override.until": {"en": "Until", "fr": "Jusqu'au"},
    "hours.override.reason": {"en": "Reason", "fr": "Motif"},
    "hours.override.apply": {"en": "Apply", "fr": "Appliquer"},
    "hours.override.active": {"en": "Override in force: {state} until {until}",
                              "fr": "Forçage en cours : {state} jusqu'au {until}"},
    "hours.override.ended": {"en": "Override ended", "fr": "Forçage terminé"},
    "hours.weekly": {"en": "Weekly hours", "fr": "Horaires de la semaine"},
    "hours.weekly.help": {"en": "Ranges as HH:MM-HH:MM; a day without a range is closed; 22:00-06:00 runs "
                                "into the next day; 00:00-00:00 is the whole day.",
                          "fr": "Plages au format HH:MM-HH:MM ; un jour sans plage est fermé ; 22:00-06:00 "
                                "déborde sur le lendemain ; 00:00-00:00 couvre toute la journée."},
    "hours.day": {"en": "Day", "fr": "Jour"},
    "hours.ranges": {"en": "Open ranges", "fr": "Plages d'ouverture"},
    "hours.add_range": {"en": "Add a range", "fr": "Ajouter une plage"},
    "hours.remove": {"en": "Remove", "fr": "Supprimer"},
    "hours.day.monday": {"en": "Monday", "fr": "Lundi"},
    "hours.day.tuesday": {"en": "Tuesday", "fr": "Mardi"},
    "hours.day.wednesday": {"en": "Wednesday", "fr": "Mercredi"},
    "hours.day.thursday": {"en": "Thursday", "fr": "Jeudi"},
    "hours.day.friday": {"en": "Friday", "fr": "Vendredi"},
    "hours.day.saturday": {"en": "Saturday", "fr": "Samedi"},
    "hours.day.sunday": {"en": "Sunday", "fr": "Dimanche"},
    "hours.timezone": {"en": "Time zone", "fr": "Fuseau horaire"},
    "hours.holidays": {"en": "Public holidays", "fr": "Jours fériés"},
    "hours.holidays.help": {"en": "Closed on the country's public holidays (a dated entry can open one).",
                            "fr": "Fermé les jours fériés du pays (une date particulière peut en ouvrir un)."},
    "hours.holidays.country": {"en": "Country", "fr": "Pays"},
    "hours.holidays.no_country": {"en": "None (open on public holidays)",
                                  "fr": "Aucun (ouvert les jours fériés)"},
    "hours.holidays.subdivision": {"en": "Region (optional)", "fr": "Région (facultatif)"},
    "hours.holidays.language": {"en": "Names in (optional)", "fr": "Noms en (facultatif)"},
    "hours.holidays.upcoming": {"en": "Next public holidays", "fr": "Prochains jours fériés"},
    "hours.dated": {"en": "Dated closures and exceptions", "fr": "Fermetures et exceptions datées"},
    "hours.dated.help": {"en": "They replace the weekly hours and holidays on their dates: without hours the "
                               "service is closed (callers hear the holiday message).",
                         "fr": "Elles remplacent les horaires et jours fériés à leurs dates : sans plage, le "
                               "service est fermé (les appelants entendent le message de fermeture)."},
    "hours.dated.from": {"en": "Date (from)", "fr": "Date (du)"},
    "hours.dated.to": {"en": "To (optional)", "fr": "Au (facultatif)"},
    "hours.dated.label": {"en": "Label", "fr": "Libellé"},
    "hours.dated.hours": {"en": "Open ranges (empty: closed)", "fr": "Plages (vide : fermé)"},
    "hours.dated.add": {"en": "Add a date", "fr": "Ajouter une date"},
    "hours.save": {"en": "Save the hours", "fr": "Enregistrer les horaires"},
    "hours.refused": {"en": "Not saved: fix the fields marked below.",
                      "fr": "Non enregistré : corrigez les champs signalés."},
}
register_messages(MESSAGES)


@page
@requires(*SUPERVISORS)
async def hours_page(request: web.Request) -> web.StreamResponse:
    ivr = request.app[IVR_PAGES_KEY]
    services = await stored_services(ivr)
    stored = chosen(services, request.query.get("number"))
    lang = pick_language(request, request.get(IDENTITY))
    view = await hours_view(ivr, stored) if stored is not None else None
    config = {"messages": script_messages(lang), "countries": _countries(), "service": view}
    return render_page(request, "hours.html", "hours", services=choices(services), view=view, days=DAY_NAMES,
                       config=config, timezones=_timezones())


async def hours_view(ivr: IvrService, stored: StoredService) -> dict[str, Any]:
    """The stored hours as the form shows them, the state now, and the override's suggested expiry."""
    number, zone = stored.service.number, zone_name(stored)
    status = await ivr.hours_status(number)
    document = stored.hours or {"timezone": zone, "weekly": {}}
    now = ivr.clock()
    override = status.get("override")
    return {"number": number, "name": stored.service.name, "configured": stored.hours is not None,
            "timezone": zone, "weekly": document.get("weekly", {}), "holidays": document.get("holidays") or {},
            "dated": document.get("dated", []), "status": status, "override": override,
            "override_until": wall_time(override["until"] if override else None, zone),
            "default_until": wall_time(now + DEFAULT_OVERRIDE, zone), "now": now.isoformat(),
            "upcoming": upcoming_holidays(document.get("holidays"), now, zone)}


def upcoming_holidays(block: Any, now: datetime, zone: str) -> list[dict[str, str]]:
    """The next public holidays the IVR will close on, so the supervisor sees what the country option means."""
    if not isinstance(block, dict) or not block.get("country"):
        return []
    try:
        today = now.astimezone(ZoneInfo(zone)).date()
        table = holidays.country_holidays(block["country"], subdiv=block.get("subdivision"),
                                          years=[today.year, today.year + 1], language=block.get("language"))
    except (NotImplementedError, ZoneInfoNotFoundError, ValueError):
        return []
    days: list[tuple[date, str]] = sorted((day, name) for day, name in table.items() if day >= today)
    return [{"date": day.isoformat(), "name": name} for day, name in days[:UPCOMING_HOLIDAYS]]


def script_messages(lang: str) -> dict[str, str]:
    """The texts hours.js shows (statuses, notices), in the page's language."""
    t = translator(lang)
    keys = [f"hours.status.{status}" for status in STATUSES] + [
        "hours.next_change", "hours.no_change", "hours.override.ended", "hours.refused", "hours.remove",
        "sup.saved", "sup.error"]
    return {key: t(key) for key in keys}


@functools.cache
def _countries() -> dict[str, list[str]]:
    """Country code -> its subdivisions, as the holidays package (and so the IVR) knows them."""
    return {code: list(subdivisions) for code, subdivisions in sorted(holidays.list_supported_countries().items())}


@functools.cache
def _timezones() -> list[str]:
    return sorted(available_timezones())


def add_routes(app: web.Application) -> None:
    app.router.add_get("/supervision/hours", hours_page)
