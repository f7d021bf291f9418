"""Call figures from the calls table: what reports group by hour, day, number or queue, and the wallboard's today.

Each call counts once, in the first class that fits: ``closed`` (it reached the desk out of hours: the path has
an opening-hours step ``<node>:closed|holiday|override_closed``, or a ``voicemail:closed``), ``answered`` (an
agent picked up), ``voicemail`` (a message was left, or the IVR sent it there), ``abandoned`` (the caller hung
up first, in the IVR or in a queue), ``other`` (transferred, ended by the flow, unknown number, in progress).

The queue figures use the same definitions as the live ACD (``cti.acd.service.QueueCounters``): the service
level is the calls answered within the queue's ``service_level_s`` over the queued calls answered or abandoned;
ASA is the mean wait of answered calls; AHT their mean talk time. Reports fold the rows here, in Python
(``call_class``); the wallboard's full recount of the day lets the database count them (``call_class_sql``,
``count_by_queue``), so no row of the day comes into the server's memory: the same rules, held equal by a test.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Literal, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, case, func, literal, or_, select

from cti.acd.erlang import ErlangError, agents_needed
from cti.call_records import PATH_SEPARATOR
from cti.db import Database
from cti.db.models import CallRecord
from cti.errors import InvalidInput
from cti.settings import SupervisionSettings

Group = Literal["hour", "day", "number", "queue"]
GROUPS: tuple[Group, ...] = ("hour", "day", "number", "queue")
CLOSED_STATES = frozenset({"closed", "holiday", "override_closed"})
VOICEMAIL_OUTCOMES = frozenset({"voicemail", "voicemail_empty", "to_voicemail"})
MAX_DAYS = 366
STREAM_BATCH = 200  # rows fetched from the database at a time by stream_calls
FIGURE_COLUMNS = ("offered", "answered", "abandoned", "voicemail", "closed", "other", "service_level_pct",
                  "abandon_rate_pct", "asa_s", "aht_s")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # a spreadsheet would run such a cell as a formula


class ReportInvalid(InvalidInput):
    code = "reports.invalid"


class CallFacts(NamedTuple):
    """The columns of one call row that figures are made of."""

    started_at: datetime
    called_number: str
    queue: str | None
    outcome: str
    answered_at: datetime | None
    wait_s: float | None
    talk_s: float | None
    path: str


FACT_COLUMNS = (CallRecord.started_at, CallRecord.called_number, CallRecord.queue, CallRecord.outcome,
                CallRecord.answered_at, CallRecord.wait_s, CallRecord.talk_s, CallRecord.path)  # as in CallFacts


def call_class(call: CallFacts) -> str:
    """closed, answered, voicemail, abandoned or other (see the module docstring)."""
    if any(step.rpartition(":")[2] in CLOSED_STATES for step in call.path.split(PATH_SEPARATOR) if ":" in step):
        return "closed"
    if call.answered_at is not None or call.outcome == "answered":
        return "answered"
    if call.outcome in VOICEMAIL_OUTCOMES:
        return "voicemail"
    return "abandoned" if call.outcome == "abandoned" else "other"


def call_class_sql() -> ColumnElement[str]:
    """``call_class`` as an SQL expression on ``calls``, for counts the database makes itself.

    A step ends in ``:<state>`` where the path ends with it or has it right before a separator; ``replace``
    and ``substr`` compare case-sensitively on SQLite and PostgreSQL alike, where SQLite's LIKE does not.
    """
    path = CallRecord.path
    closed = or_(*(or_(func.replace(path, f":{state}{PATH_SEPARATOR}", "") != path,
                       func.substr(path, func.length(path) - len(state)) == f":{state}")
                   for state in sorted(CLOSED_STATES)))
    return case(
        (closed, "closed"),
        (or_(CallRecord.answered_at.is_not(None), CallRecord.outcome == "answered"), "answered"),
        (CallRecord.outcome.in_(sorted(VOICEMAIL_OUTCOMES)), "voicemail"),
        (CallRecord.outcome == "abandoned", "abandoned"),
        else_="other")


@dataclass
class Figures:
    """Counts and sums over some calls; ``as_dict`` turns them into the published figures."""

    classes: dict[str, int] = field(default_factory=dict)
    queued_finished: int = 0  # queued calls answered or abandoned: the service level's denominator
    in_target: int = 0
    waits: int = 0
    wait_s: float = 0.0
    talks: int = 0
    talk_s: float = 0.0

    def add(self, call: CallFacts, target_s: float) -> None:
        kind = call_class(call)
        self.classes[kind] = self.classes.get(kind, 0) + 1
        if kind == "answered":
            self._answered(call, target_s)
        elif kind == "abandoned" and call.queue is not None:
            self.queued_finished += 1

    def _answered(self, call: CallFacts, target_s: float) -> None:
        self.queued_finished += 1
        if call.wait_s is not None:
            self.waits += 1
            self.wait_s += call.wait_s
            self.in_target += call.wait_s <= target_s
        if call.talk_s is not None:
            self.talks += 1
            self.talk_s += call.talk_s

    def add_counted(self, row: CountedRow) -> None:
        """Calls of one queue and class counted by the database (``count_by_queue``), as ``add`` would take them
        one by one."""
        self.classes[row.kind] = self.classes.get(row.kind, 0) + row.calls
        if row.kind == "answered":
            self.queued_finished += row.calls
            self.waits, self.wait_s = self.waits + row.waits, self.wait_s + (row.wait_s or 0.0)
            self.in_target += row.in_target or 0
            self.talks, self.talk_s = self.talks + row.talks, self.talk_s + (row.talk_s or 0.0)
        elif row.kind == "abandoned" and row.queue is not None:
            self.queued_finished += row.calls

    def merge(self, other: Figures) -> None:
        for kind, count in other.classes.items():
            self.classes[kind] = self.classes.get(kind, 0) + count
        self.queued_finished += other.queued_finished
        self.in_target += other.in_target
        self.waits, self.wait_s = self.waits + other.waits, self.wait_s + other.wait_s
        self.talks, self.talk_s = self.talks + other.talks, self.talk_s + other.talk_s

    def as_dict(self) -> dict[str, Any]:
        count = self.classes.get
        finished = self.queued_finished
        queued_abandoned = finished - count("answered", 0)
        return {
            "offered": sum(self.classes.values()), "answered": count("answered", 0),
            "abandoned": count("abandoned", 0), "voicemail": count("voicemail", 0), "closed": count("closed", 0),
            "other": count("other", 0),
            "service_level_pct": _pct(self.in_target, finished), "abandon_rate_pct": _pct(queued_abandoned, finished),
            "asa_s": _mean(self.wait_s, self.waits), "aht_s": _mean(self.talk_s, self.talks),
        }  # fmt: skip


def _pct(part: int, whole: int) -> float | None:
    return None if not whole else round(100.0 * part / whole, 1)


def _mean(total: float, count: int) -> float | None:
    return None if not count else round(total / count, 1)


# --- the rows ---------------------------------------------------------------------------------------------


async def stream_calls(db: Database, *where: ColumnElement[bool], ordered: bool = False
                       ) -> AsyncGenerator[CallFacts, None]:
    """The calls matching ``where`` as the database sends them: ``STREAM_BATCH`` rows in memory at a time, however
    many match. Oldest first when ``ordered`` (unordered leaves the database free to pick the index that suits
    ``where``). Close it (``aclosing``) when you may stop early."""
    query = select(*FACT_COLUMNS).where(*where)
    if ordered:
        query = query.order_by(CallRecord.started_at, CallRecord.id)
    async with db.session() as session:
        result = await session.stream(query.execution_options(yield_per=STREAM_BATCH))
        async for rows in result.partitions():  # a batch at a time: one switch to the driver per batch, not per row
            for row in rows:
                yield CallFacts._make(row)


class CountedRow(NamedTuple):
    """The sums ``count_by_queue`` asks the database for, per queue and class (a sum is None over no value)."""

    queue: str | None
    kind: str
    calls: int
    waits: int
    wait_s: float | None
    in_target: int | None
    talks: int
    talk_s: float | None


async def count_by_queue(db: Database, service_levels: Mapping[str, float], default_s: float,
                         *where: ColumnElement[bool]) -> dict[str, Figures]:
    """The Figures per queue ("" for none) of the calls matching ``where``, counted by the database: a few rows
    per queue come back, whatever the number of calls. ``service_levels``: each queue's "answered within"
    target, ``default_s`` for the others (as ``targets``)."""
    target = (case({name: literal(float(value)) for name, value in service_levels.items()}, value=CallRecord.queue,
                   else_=literal(float(default_s))) if service_levels else literal(float(default_s)))
    kind = call_class_sql().label("kind")
    query = (select(CallRecord.queue, kind, func.count(), func.count(CallRecord.wait_s), func.sum(CallRecord.wait_s),
                    func.sum(case((CallRecord.wait_s <= target, 1), else_=0)), func.count(CallRecord.talk_s),
                    func.sum(CallRecord.talk_s))
             .where(*where).group_by(CallRecord.queue, kind))
    found: dict[str, Figures] = {}
    async with db.session() as session:
        for row in (await session.execute(query)).all():
            counted = CountedRow._make(row)
            found.setdefault(counted.queue or "", Figures()).add_counted(counted)
    return found


def started_in(start: datetime, end: datetime) -> ColumnElement[bool]:
    """Calls started in ``[start, end)`` (aware instants)."""
    return and_(CallRecord.started_at >= start, CallRecord.started_at < end)


async def load_calls(db: Database, start: datetime, end: datetime) -> list[CallFacts]:
    """Calls started in ``[start, end)`` (aware instants), oldest first: one list, no buffered result beside it."""
    async with aclosing(stream_calls(db, started_in(start, end), ordered=True)) as calls:
        return [call async for call in calls]


def day_bounds(first: date, last: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """From midnight of ``first`` to midnight after ``last``, in the desk's zone (DST days have 23 or 25 hours)."""
    return datetime.combine(first, time(), zone), datetime.combine(last + timedelta(days=1), time(), zone)


def group_key(call: CallFacts, group: Group, zone: ZoneInfo) -> str:
    local = call.started_at.astimezone(zone)
    match group:
        case "hour":
            return local.strftime("%Y-%m-%d %H:00")
        case "day":
            return local.date().isoformat()
        case "number":
            return call.called_number
        case "queue":
            return call.queue or ""


def figures_by(calls: Iterable[CallFacts], key: Callable[[CallFacts], str],
               target_of: Callable[[str | None], float]) -> dict[str, Figures]:
    """One ``Figures`` per key, keys sorted (chronological for hours and days)."""
    found: dict[str, Figures] = {}
    for call in calls:
        found.setdefault(key(call), Figures()).add(call, target_of(call.queue))
    return dict(sorted(found.items()))


def targets(service_levels: Mapping[str, int], default_s: float) -> Callable[[str | None], float]:
    """Each queue's "answered within" target (``service_level_s``); ``default_s`` for queues not configured."""
    return lambda queue: float(service_levels.get(queue or "", default_s))


# --- the report -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportQuery:
    first: date
    last: date
    group: Group

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1


def parse_query(query: Mapping[str, str], today: date) -> ReportQuery:
    """``from``/``to`` (YYYY-MM-DD, both included, default today) and ``group``; every error at once."""
    errors: list[str] = []
    first = _date(query.get("from"), "from", today, errors)
    last = _date(query.get("to"), "to", today, errors)
    group = query.get("group") or "day"
    if group not in GROUPS:
        errors.append(f"group: one of {', '.join(GROUPS)}, not {group!r}")
    if not errors and last < first:
        errors.append("to: must not be before from")
    if not errors and (last - first).days >= MAX_DAYS:
        errors.append(f"from/to: at most {MAX_DAYS} days per report")
    if errors:
        raise ReportInvalid(errors)
    return ReportQuery(first, last, group)  # type: ignore[arg-type]  # checked against GROUPS above


def _date(value: str | None, name: str, today: date, errors: list[str]) -> date:
    if not value:
        return today
    try:
        return date.fromisoformat(value)
    except ValueError:
        errors.append(f"{name}: a date as YYYY-MM-DD, not {value[:40]!r}")
        return today


def build_report(calls: list[CallFacts], query: ReportQuery, settings: SupervisionSettings,
                 service_levels: Mapping[str, int]) -> dict[str, Any]:
    """The rows of ``query.group``, their total and the staffing suggestion per hour of day."""
    zone = ZoneInfo(settings.timezone)
    target_of = targets(service_levels, settings.answer_within_s)
    groups = figures_by(calls, lambda call: group_key(call, query.group, zone), target_of)
    total = Figures()
    for figures in groups.values():
        total.merge(figures)
    rows = [{"key": key, **figures.as_dict()} for key, figures in groups.items()]
    return {"from": query.first.isoformat(), "to": query.last.isoformat(), "group": query.group,
            "timezone": settings.timezone, "rows": rows, "total": total.as_dict(),
            "staffing": staffing(calls, query.days, settings, zone)}


def staffing(calls: list[CallFacts], days: int, settings: SupervisionSettings, zone: ZoneInfo) -> dict[str, Any]:
    """Erlang C per hour of day: the queued calls of that hour and their mean talk time, averaged over the range.

    An hour whose calls were never answered borrows the range's overall AHT; without any AHT there is nothing
    to size, and the hour says so (``agents`` null).
    """
    queued = (call for call in calls if call.queue is not None)
    by_hour = figures_by(queued, lambda call: f"{call.started_at.astimezone(zone).hour:02d}", lambda _: 0.0)
    overall = Figures()
    for figures in by_hour.values():
        overall.merge(figures)
    fallback = _mean(overall.talk_s, overall.talks)
    hours = [_staffing_hour(int(hour), figures, days, fallback, settings) for hour, figures in by_hour.items()]
    return {"days": days, "service_level_pct": settings.service_level_min, "answer_within_s": settings.answer_within_s,
            "shrinkage": settings.shrinkage, "hours": hours}


def _staffing_hour(hour: int, figures: Figures, days: int, fallback_aht: float | None,
                   settings: SupervisionSettings) -> dict[str, Any]:
    calls_per_hour = round(sum(figures.classes.values()) / days, 2)
    aht = _mean(figures.talk_s, figures.talks) or fallback_aht
    row: dict[str, Any] = {"hour": hour, "calls_per_hour": calls_per_hour, "aht_s": aht, "agents": None,
                           "scheduled_agents": None, "expected_service_level_pct": None}
    if aht is None or aht <= 0:
        return row
    try:
        result = agents_needed(calls_per_hour, aht, settings.service_level_min / 100.0, settings.answer_within_s,
                               shrinkage=settings.shrinkage)
    except ErlangError:
        return row
    row.update(agents=result.agents, scheduled_agents=result.scheduled_agents,
               expected_service_level_pct=round(100.0 * result.service_level, 1))
    return row


def report_csv(report: Mapping[str, Any]) -> str:
    """The grouped rows then a ``total`` row; a key a spreadsheet would read as a formula is quoted with '."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([report["group"], *FIGURE_COLUMNS])
    for row in [*report["rows"], {**report["total"], "key": "total"}]:
        writer.writerow([_cell(row["key"]), *("" if row[name] is None else row[name] for name in FIGURE_COLUMNS)])
    return out.getvalue()


def _cell(text: str) -> str:
    return "'" + text if text.startswith(FORMULA_STARTS) else text
