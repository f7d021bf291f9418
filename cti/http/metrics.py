"""``GET /metrics``: this node's figures in the Prometheus text format (version 0.0.4).

Prometheus scrapes it with an API token of the supervisor (or admin) role as ``Authorization: Bearer``.
Per node: AGI sessions and commands, the AMI link, the ACD's calls and agents, HTTP requests answered. From the
database every node shares (so the same on each): tickets by status, voicemail recordings by state and
transcription jobs by status. A part that cannot be read (database down) is left out and
``cti_source_up{source=...}`` says so; the scrape itself still answers.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web
from sqlalchemy import func, select

from cti.db import Database
from cti.http.auth import requires
from cti.http.status import STATUS_KEY
from tickets.models import Recording, Ticket, TranscriptionJob

if TYPE_CHECKING:
    from cti.acd.service import AcdService

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
Labels = tuple[tuple[str, str], ...]
RequestKey = tuple[str, str, int]  # method, route (its pattern, never the raw path), status


@dataclass
class Family:
    """One metric: its samples (labels -> value) under one HELP and TYPE."""

    name: str
    kind: str  # gauge or counter
    help: str
    samples: list[tuple[Labels, float]] = field(default_factory=list)

    def add(self, value: float, **labels: str) -> Family:
        self.samples.append((tuple(sorted(labels.items())), value))
        return self


@dataclass
class Sources:
    """What the metrics read besides the status report (AGI, AMI, database and shared-state probes)."""

    db: Database | None = None
    acd: AcdService | None = None
    requests: Counter[RequestKey] = field(default_factory=Counter)


SOURCES_KEY: web.AppKey[Sources] = web.AppKey("metrics_sources", Sources)


# --- the text format ---------------------------------------------------------------------------------------


def render(families: Iterable[Family]) -> str:
    lines: list[str] = []
    for family in families:
        lines.append(f"# HELP {family.name} {_escape_help(family.help)}")
        lines.append(f"# TYPE {family.name} {family.kind}")
        for labels, value in family.samples:
            label_text = ",".join(f'{key}="{_escape_label(text)}"' for key, text in labels)
            lines.append(f"{family.name}{{{label_text}}} {_number(value)}" if labels else
                         f"{family.name} {_number(value)}")
    return "\n".join(lines) + "\n"


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _escape_label(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return str(int(value)) if float(value).is_integer() else repr(float(value))


# --- the figures -------------------------------------------------------------------------------------------


def status_families(report: Mapping[str, Any]) -> list[Family]:
    """AGI, AMI and the probes, from the ``/api/status`` report of this node."""
    agi, ami = report.get("agi", {}), report.get("ami", {})
    commands, setups = agi.get("command_rtt_ms", {}), agi.get("setup_ms", {})
    rtt = Family("cti_agi_command_rtt_seconds", "gauge",
                 "Round trip of AGI commands not paced by the caller, over the recent window")
    for quantile, key in (("0.5", "p50"), ("0.99", "p99")):
        if commands.get(key) is not None:
            rtt.add(commands[key] / 1000.0, quantile=quantile)
    return [
        Family("cti_agi_sessions_active", "gauge", "AGI sessions in progress").add(agi.get("active_sessions", 0)),
        Family("cti_agi_sessions_total", "counter", "AGI sessions set up since start").add(setups.get("count", 0)),
        Family("cti_agi_commands_total", "counter", "AGI commands not paced by the caller, since start")
        .add(commands.get("count", 0)),
        rtt,
        Family("cti_ami_connected", "gauge", "1 while the AMI link is up").add(1 if ami.get("connected") else 0),
        Family("cti_ami_reconnects_total", "counter", "AMI reconnections since start").add(ami.get("reconnects", 0)),
        Family("cti_channels_live", "gauge", "Asterisk channels seen live through AMI")
        .add(ami.get("live_channels", 0)),
        Family("cti_source_up", "gauge", "1 when the part could be read")
        .add(1 if report.get("database", {}).get("ok") else 0, source="database")
        .add(1 if report.get("state", {}).get("ok") else 0, source="state"),
    ]  # fmt: skip


def acd_families(acd: AcdService) -> list[Family]:
    """Calls waiting and with an agent per queue, agents per state, what happened to calls since start."""
    stats = acd.stats()
    waiting = Family("cti_acd_calls_waiting", "gauge", "Callers waiting in the queue on this node")
    in_progress = Family("cti_acd_calls_in_progress", "gauge", "Queued calls ringing an agent or answered, this node")
    outcomes = Family("cti_acd_calls_total", "counter", "Queued calls since start by what became of them")
    busy = Counter(call.queue for call in acd.calls.values() if call.phase.value in ("assigned", "dialing", "answered"))
    for queue, figures in stats["queues"].items():
        waiting.add(figures["waiting"], queue=queue)
        in_progress.add(busy.get(queue, 0), queue=queue)
        for result in ("offered", "answered", "abandoned", "overflowed", "to_voicemail"):
            outcomes.add(figures[result], queue=queue, result=result)
    agents = Family("cti_acd_agents", "gauge", "Agents per state")
    for state, count in stats["agents"].items():
        agents.add(count, state=state)
    return [waiting, in_progress, outcomes, agents]


async def database_families(db: Database) -> list[Family]:
    """Tickets by status, voicemail recordings by state, transcription jobs by status."""
    tables = (("cti_tickets", "Tickets by status", Ticket.status, "status"),
              ("cti_voicemail_recordings", "Voicemail recordings by state", Recording.state, "state"),
              ("cti_transcription_jobs", "Voicemail transcription jobs by status", TranscriptionJob.status, "status"))
    families = []
    async with db.session() as session:
        for name, text, column, label in tables:
            family = Family(name, "gauge", text)
            for value, count in await session.execute(select(column, func.count()).group_by(column).order_by(column)):
                family.add(count, **{label: value})
            families.append(family)
    return families


def request_family(requests: Counter[RequestKey]) -> Family:
    family = Family("cti_http_requests_total", "counter", "HTTP responses sent by this node since start")
    for (method, route, status), count in sorted(requests.items()):
        family.add(count, method=method, route=route, status=str(status))
    return family


# --- HTTP --------------------------------------------------------------------------------------------------


@requires("admin", "supervisor")
async def metrics(request: web.Request) -> web.StreamResponse:
    """This node's figures in the Prometheus text format (scrape with a supervisor API token)."""
    sources = request.app[SOURCES_KEY]
    families = status_families(await request.app[STATUS_KEY]())
    if sources.acd is not None:
        families += acd_families(sources.acd)
    if sources.db is not None:
        try:
            families += await database_families(sources.db)
        except Exception:  # reported by cti_source_up{source="database"}; the other figures still count
            log.warning("metrics: could not count tickets and voicemail jobs", exc_info=True)
    families.append(request_family(sources.requests))
    return web.Response(text=render(families), headers={"Content-Type": CONTENT_TYPE})


async def _count_response(request: web.Request, response: web.StreamResponse) -> None:
    """Every response this node prepares (errors and refusals included), by route pattern and status."""
    route = request.match_info.route.resource
    pattern = route.canonical if route is not None else "unmatched"
    request.app[SOURCES_KEY].requests[(request.method, pattern, response.status)] += 1


def add_routes(app: web.Application, sources: Sources) -> None:
    app[SOURCES_KEY] = sources
    app.on_response_prepare.append(_count_response)
    app.router.add_get("/metrics", metrics)
