"""Opening hours: is the help desk open at a given instant, and when does that change next?

Pure functions: no database, no clock. Every function takes the instant, so the IVR, the wallboard and
the tests all ask the same question the same way.

Ranges are wall-clock times in the service's zone and belong to the day they start on: Friday
22:00-06:00 is open until Saturday 06:00 even when Saturday is a holiday. A wall time that does not
exist (spring-forward gap) means the first real instant after the gap; an ambiguous one (fall-back)
means its first occurrence. All arithmetic is done in UTC, never on zone-aware wall times, because
Python compares datetimes sharing one tzinfo by wall time and ignores ``fold``.

Parsing the admin's YAML/JSON shape lives in :mod:`cti.ivr.schedule_parse`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

from cti.errors import InvalidInput

SEARCH_DAYS = 370
MIDNIGHT = time(0, 0)
ONE_DAY = timedelta(days=1)


class ScheduleError(InvalidInput):
    """Opening hours refused (bad input) or asked a question they cannot answer (naive instant)."""

    code = "ivr.schedule_invalid"


class ScheduleStatus(StrEnum):
    """Why the line is open or closed; the values are stable strings for APIs and the wallboard."""

    OPEN = "open"
    CLOSED = "closed"
    HOLIDAY = "holiday"
    OVERRIDE_OPEN = "override_open"
    OVERRIDE_CLOSED = "override_closed"


@dataclass(frozen=True)
class TimeRange:
    """Opening from ``start`` to ``end`` on the day it starts; ``end <= start`` runs into the next day."""

    start: time
    end: time

    @property
    def overnight(self) -> bool:
        """True when the range ends on the next day (this includes "until midnight" and 24 h)."""
        return self.end <= self.start


@dataclass(frozen=True)
class DatedHours:
    """Dates (``end`` inclusive) that replace the weekly hours and holidays: closed if no ``ranges``."""

    start: date
    end: date
    label: str
    ranges: tuple[TimeRange, ...] = ()


@dataclass(frozen=True)
class Override:
    """A manual open/closed switch that expires by itself at ``until`` (aware)."""

    state: Literal["open", "closed"]
    until: datetime
    reason: str = ""


@dataclass(frozen=True)
class OpeningHours:
    """Everything that decides opening: weekly ranges (0=Monday), holidays, dated entries, override."""

    timezone: str
    weekly: Mapping[int, tuple[TimeRange, ...]]
    holiday_country: str | None = None
    holiday_subdivision: str | None = None
    dated: tuple[DatedHours, ...] = ()
    override: Override | None = None
    holiday_language: str | None = None

    def __post_init__(self) -> None:
        # A read-only copy: the caller's dict cannot change a "frozen" schedule behind its back.
        object.__setattr__(self, "weekly", MappingProxyType(dict(self.weekly)))


@dataclass(frozen=True)
class ScheduleState:
    status: ScheduleStatus
    reason: str = ""
    holiday_name: str | None = None

    @property
    def is_open(self) -> bool:
        return self.status in (ScheduleStatus.OPEN, ScheduleStatus.OVERRIDE_OPEN)


@dataclass(frozen=True)
class _Interval:
    """One range placed on the real time line (UTC), with the reason reported while it is open."""

    start: datetime
    end: datetime
    reason: str


@dataclass(frozen=True)
class _DayPlan:
    """What one local date uses: the ranges starting on it and the state reported when it is closed."""

    ranges: tuple[TimeRange, ...]
    open_reason: str
    closed: ScheduleState = field(default_factory=lambda: ScheduleState(ScheduleStatus.CLOSED))


def state_at(hours: OpeningHours, instant: datetime) -> ScheduleState:
    """The state at ``instant``: override first, then dated entries, public holidays, weekly ranges."""
    at = _utc(instant, "instant")
    override = active_override(hours.override, at)
    if override is not None:
        status = ScheduleStatus.OVERRIDE_OPEN if override.state == "open" else ScheduleStatus.OVERRIDE_CLOSED
        return ScheduleState(status, override.reason)
    zone = _zone(hours)
    covering = _covering(hours, zone, at)
    if covering:
        return ScheduleState(ScheduleStatus.OPEN, covering[0].reason)
    return _plan(hours, at.astimezone(zone).date()).closed


def next_opening(hours: OpeningHours, instant: datetime) -> datetime | None:
    """First instant >= ``instant`` that is open (in the service's zone), or None within 370 days."""
    at = _utc(instant, "instant")
    zone = _zone(hours)
    override = active_override(hours.override, at)
    if override is not None and override.state == "open":
        return at.astimezone(zone)
    start = at if override is None else _utc(override.until, "override.until")
    found = _first_open(hours, zone, start, _last_day(zone, at))
    return None if found is None else found.astimezone(zone)


def next_closing(hours: OpeningHours, instant: datetime) -> datetime | None:
    """First instant >= ``instant`` that is not open (in the service's zone), or None within 370 days."""
    at = _utc(instant, "instant")
    zone = _zone(hours)
    override = active_override(hours.override, at)
    if override is not None and override.state == "closed":
        return at.astimezone(zone)
    start = at if override is None else _utc(override.until, "override.until")
    found = _first_closed(hours, zone, start, _last_day(zone, at))
    return None if found is None else found.astimezone(zone)


def _zone(hours: OpeningHours) -> ZoneInfo:
    """The service's zone; an unknown name is a ScheduleError, not a KeyError from deep inside."""
    try:
        return ZoneInfo(hours.timezone)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ScheduleError([f'timezone: unknown time zone "{hours.timezone}"']) from error


def _holiday_name(country: str, subdivision: str | None, language: str | None, day: date) -> str | None:
    """The public holiday's name on ``day``, or None; holiday tables are built once per year."""
    try:
        return _holiday_table(country, subdivision, day.year, language).get(day)
    except NotImplementedError as error:  # what the holidays package raises for an unknown country/subdivision
        raise ScheduleError([f"holidays: {error}"]) from error


@functools.lru_cache(maxsize=256)
def _holiday_table(country: str, subdivision: str | None, year: int, language: str | None) -> holidays.HolidayBase:
    # expand=False: a cached table must never grow (and mutate) when asked about another year.
    return holidays.country_holidays(country, subdiv=subdivision, years=year, language=language, expand=False)


def _utc(instant: datetime, what: str) -> datetime:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ScheduleError([f"{what}: {instant.isoformat()} has no time zone (naive datetimes are ambiguous)"])
    return instant.astimezone(UTC)


def active_override(override: Override | None, at: datetime) -> Override | None:
    """The override in force at ``at`` (UTC); it expires by itself, so no one has to remember to clear it."""
    if override is None or at >= _utc(override.until, "override.until"):
        return None
    return override


def _last_day(zone: ZoneInfo, at: datetime) -> date:
    return at.astimezone(zone).date() + timedelta(days=SEARCH_DAYS)


def _plan(hours: OpeningHours, day: date) -> _DayPlan:
    """Which rule owns ``day``: a dated entry beats a public holiday, which beats the weekly hours."""
    entry = next((entry for entry in hours.dated if entry.start <= day <= entry.end), None)
    if entry is not None and entry.ranges:
        return _DayPlan(entry.ranges, entry.label, ScheduleState(ScheduleStatus.CLOSED, entry.label))
    if entry is not None:
        return _DayPlan((), entry.label, ScheduleState(ScheduleStatus.HOLIDAY, entry.label, entry.label))
    if hours.holiday_country is not None:
        name = _holiday_name(hours.holiday_country, hours.holiday_subdivision, hours.holiday_language, day)
        if name is not None:
            return _DayPlan((), name, ScheduleState(ScheduleStatus.HOLIDAY, name, name))
    return _DayPlan(tuple(hours.weekly.get(day.weekday(), ())), "")


def _intervals(hours: OpeningHours, zone: ZoneInfo, day: date) -> list[_Interval]:
    """The ranges starting on ``day`` as real intervals; a range swallowed by a DST gap is dropped."""
    plan = _plan(hours, day)
    placed = []
    for time_range in plan.ranges:
        end_day = day + ONE_DAY if time_range.overnight else day
        start, end = _to_utc(day, time_range.start, zone), _to_utc(end_day, time_range.end, zone)
        if start < end:
            placed.append(_Interval(start, end, plan.open_reason))
    return placed


def _covering(hours: OpeningHours, zone: ZoneInfo, at: datetime) -> list[_Interval]:
    """Intervals open at ``at``: its own day's first, then the previous day's overnight tail."""
    day = at.astimezone(zone).date()
    # The next day is checked too: after a fall-back across midnight its 00:00 can come before ``at``.
    days = (day, day - ONE_DAY, day + ONE_DAY)
    return [interval for d in days for interval in _intervals(hours, zone, d) if interval.start <= at < interval.end]


def _days(zone: ZoneInfo, start: datetime, last_day: date) -> Iterator[date]:
    """From the day before ``start`` (whose overnight range may still run) up to ``last_day``."""
    day = start.astimezone(zone).date() - ONE_DAY
    while day <= last_day:
        yield day
        day += ONE_DAY


def _first_open(hours: OpeningHours, zone: ZoneInfo, start: datetime, last_day: date) -> datetime | None:
    """Earliest open instant >= ``start``; days are scanned in order and each day starts no earlier."""
    for day in _days(zone, start, last_day):
        candidates = [max(iv.start, start) for iv in _intervals(hours, zone, day) if iv.end > start]
        if candidates:
            return min(candidates)
    return None


def _first_closed(hours: OpeningHours, zone: ZoneInfo, start: datetime, last_day: date) -> datetime | None:
    """Follows touching and overlapping intervals until a gap: 12:00-18:00 after 08:00-12:00 is one."""
    cursor = start
    while cursor.astimezone(zone).date() <= last_day:
        covering = _covering(hours, zone, cursor)
        if not covering:
            return cursor
        cursor = max(interval.end for interval in covering)
    return None


def _to_utc(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The real instant of a wall time: first occurrence if ambiguous, end of the gap if skipped."""
    wall = datetime.combine(day, at)
    first = wall.replace(tzinfo=zone).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == wall:
        return first
    return _gap_end(wall, zone)


def _gap_end(wall: datetime, zone: ZoneInfo) -> datetime:
    """The transition instant of the gap holding ``wall``: the first instant whose wall time is past it.

    Found by bisection over whole seconds, so any gap length works (30 min, 1 h, Samoa's lost day).
    """
    low = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)  # after-gap offset: lands before the jump
    high = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)  # before-gap offset: lands after it
    while high - low > timedelta(seconds=1):
        middle = low + timedelta(seconds=int((high - low).total_seconds()) // 2)
        if middle.astimezone(zone).replace(tzinfo=None) > wall:
            high = middle
        else:
            low = middle
    return high
