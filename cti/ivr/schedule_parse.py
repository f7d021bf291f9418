"""Opening hours from (and back to) the plain shape an admin writes in YAML or JSON.

Every mistake is collected with the path that holds it (``weekly.monday[1]: ...``) and all of them are
raised together in one :class:`ScheduleError`, so an admin fixes a file in one pass. The shape::

    timezone: Europe/Paris
    weekly: {monday: ["08:30-12:00", "13:30-18:00"], friday: ["22:00-06:00"], sunday: []}
    holidays: {country: FR, subdivision: null, language: fr}
    dated: [{date: 2026-12-24, hours: ["08:00-12:00"], label: Christmas Eve},
            {from: 2026-08-10, to: 2026-08-14, label: Summer closure}]
    override: {state: closed, until: "2026-11-23T18:00:00+01:00", reason: Staff meeting}
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

from cti.ivr.schedule import DatedHours, OpeningHours, Override, ScheduleError, TimeRange

DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DAYS = {name: index for index, name in enumerate(DAY_NAMES)} | {name[:3]: i for i, name in enumerate(DAY_NAMES)}
TOP_KEYS = ("timezone", "weekly", "holidays", "dated", "override")
HOLIDAY_KEYS = ("country", "subdivision", "language")
DATED_KEYS = ("date", "from", "to", "label", "hours")
OVERRIDE_KEYS = ("state", "until", "reason")
RANGE = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
MAX_OVERRIDE = timedelta(days=31)
DAY_MINUTES = 24 * 60

# A parsed range with the path it came from, so overlap errors can name both sides.
_Placed = tuple[str, TimeRange]


def parse_opening_hours(data: Mapping[str, Any]) -> OpeningHours:
    """Builds OpeningHours or raises one ScheduleError listing every problem, each with its path."""
    if not isinstance(data, Mapping):
        raise ScheduleError([f"opening hours: expected a mapping, got {type(data).__name__}"])
    errors = _unknown_keys(data, TOP_KEYS, "")
    timezone = _timezone(data.get("timezone"), errors)
    weekly = _weekly(data.get("weekly"), errors)
    country, subdivision, language = _holidays(data.get("holidays"), errors)
    dated = _dated_entries(data.get("dated"), errors)
    override = _override(data.get("override"), errors)
    if errors:
        raise ScheduleError(errors)
    return OpeningHours(timezone, weekly, country, subdivision, dated, override, language)


def dump_opening_hours(hours: OpeningHours) -> dict[str, Any]:
    """The admin's shape again (JSON-safe: dates and instants as ISO strings); parse() reads it back."""
    data: dict[str, Any] = {"timezone": hours.timezone, "weekly": {
        DAY_NAMES[day]: [format_range(r) for r in ranges] for day, ranges in sorted(hours.weekly.items())}}
    if (hours.holiday_country, hours.holiday_subdivision, hours.holiday_language) != (None, None, None):
        data["holidays"] = {"country": hours.holiday_country, "subdivision": hours.holiday_subdivision,
                            "language": hours.holiday_language}
    if hours.dated:
        data["dated"] = [_dump_dated(entry) for entry in hours.dated]
    if hours.override is not None:
        override = hours.override
        data["override"] = {"state": override.state, "until": override.until.isoformat(), "reason": override.reason}
    return data


def validate_override(override: Override, now: datetime) -> None:
    """Refuses an override that is already over or lasts more than 31 days: long closures go in ``dated``."""
    if now.utcoffset() is None:
        raise ScheduleError([f"now: {now.isoformat()} has no UTC offset"])
    state = override.state
    errors = [] if state in ("open", "closed") else [f'override.state: "{state}" is not open or closed']
    errors += _until_problems(override.until, now)
    if errors:
        raise ScheduleError(errors)


def _until_problems(until: datetime, now: datetime) -> list[str]:
    if until.utcoffset() is None:
        return [f"override.until: {until.isoformat()} has no UTC offset"]
    if until <= now:
        return [f"override.until: {until.isoformat()} is not after now ({now.isoformat()})"]
    if until - now > MAX_OVERRIDE:
        return [f"override.until: {until.isoformat()} is more than 31 days ahead (use a dated entry)"]
    return []


def format_range(time_range: TimeRange) -> str:
    """The "HH:MM-HH:MM" an admin writes (midnight as 00:00, never 24:00)."""
    return f"{time_range.start:%H:%M}-{time_range.end:%H:%M}"


def _dump_dated(entry: DatedHours) -> dict[str, Any]:
    data: dict[str, Any] = {"date": entry.start.isoformat()} if entry.start == entry.end else {
        "from": entry.start.isoformat(), "to": entry.end.isoformat()}
    data["label"] = entry.label
    if entry.ranges:
        data["hours"] = [format_range(r) for r in entry.ranges]
    return data


def _unknown_keys(data: Mapping[Any, Any], allowed: Sequence[str], path: str) -> list[str]:
    """A misspelt key would otherwise be ignored silently, and the admin would never know why."""
    prefix = f"{path}." if path else ""
    return [f"{prefix}{key}: unknown key (expected one of {', '.join(allowed)})" for key in data if key not in allowed]


def _mapping(value: Any, path: str, allowed: Sequence[str], errors: list[str]) -> Mapping[Any, Any] | None:
    if not isinstance(value, Mapping):
        errors.append(f"{path}: expected a mapping, got {type(value).__name__}")
        return None
    errors += _unknown_keys(value, allowed, path)
    return value


def _text(value: Any, path: str, errors: list[str], *, required: bool) -> str | None:
    """A string field; None is fine for an optional one, an empty string never is."""
    if value is None and not required:
        return None
    if value is None:
        errors.append(f"{path}: missing")
    elif not isinstance(value, str) or not value:
        errors.append(f"{path}: expected a non-empty string, got {value!r}")
    else:
        return value
    return None


def _timezone(value: Any, errors: list[str]) -> str:
    name = _text(value, "timezone", errors, required=True)
    if name is None:
        return ""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        errors.append(f'timezone: unknown time zone "{name}"')
    return name


def _weekly(value: Any, errors: list[str]) -> dict[int, tuple[TimeRange, ...]]:
    """Day name -> ranges; a missing day is closed, and Sunday's overnight range runs into Monday."""
    if value is None:
        errors.append("weekly: missing")
        return {}
    if not isinstance(value, Mapping):
        errors.append(f"weekly: expected a mapping of day name to ranges, got {type(value).__name__}")
        return {}
    placed: dict[int, list[_Placed]] = {}
    for key, ranges in value.items():
        day = DAYS.get(key) if isinstance(key, str) else None
        if day is None:
            errors.append(f"weekly.{key}: unknown day (expected monday..sunday or mon..sun)")
        elif day in placed:
            errors.append(f"weekly.{key}: {DAY_NAMES[day]} is given twice")
        else:
            placed[day] = _ranges(ranges, f"weekly.{key}", errors)
    for day, today in placed.items():
        errors += _tail_overlaps(placed.get((day - 1) % 7, []), today)
    return {day: tuple(r for _, r in ranges) for day, ranges in placed.items()}


def _ranges(value: Any, path: str, errors: list[str]) -> list[_Placed]:
    """The ranges of one day, each checked, then checked against each other."""
    if isinstance(value, str) or not isinstance(value, Sequence):
        errors.append(f'{path}: expected a list of "HH:MM-HH:MM" ranges, got {value!r}')
        return []
    placed = []
    for index, item in enumerate(value):
        time_range = _time_range(item, f"{path}[{index}]", errors)
        if time_range is not None:
            placed.append((f"{path}[{index}]", time_range))
    errors += _same_day_overlaps(placed)
    return placed


def _time_range(value: Any, path: str, errors: list[str]) -> TimeRange | None:
    """One "HH:MM-HH:MM"; 24:00 is accepted as an end, meaning midnight like 00:00."""
    match = RANGE.fullmatch(value) if isinstance(value, str) else None
    numbers = [int(part) for part in match.groups()] if match else []
    if not match or not _valid_times(*numbers):
        errors.append(f"{path}: {_shown(value)} is not HH:MM-HH:MM")
        return None
    start_hour, start_minute, end_hour, end_minute = numbers
    time_range = TimeRange(time(start_hour, start_minute), time(end_hour % 24, end_minute))
    if time_range.start == time_range.end != time(0, 0):
        errors.append(f'{path}: "{value}" is empty (only 00:00-00:00 means the whole day)')
        return None
    return time_range


def _valid_times(start_hour: int, start_minute: int, end_hour: int, end_minute: int) -> bool:
    end_ok = end_hour < 24 or (end_hour, end_minute) == (24, 0)
    return start_hour < 24 and start_minute < 60 and end_ok and end_minute < 60


def _span(time_range: TimeRange) -> tuple[int, int]:
    """Minutes from the start of its own day; an overnight range ends past 1440."""
    start = time_range.start.hour * 60 + time_range.start.minute
    end = time_range.end.hour * 60 + time_range.end.minute
    return start, end + DAY_MINUTES if time_range.overnight else end


def _overlap(path: str, time_range: TimeRange, other_path: str, other: TimeRange) -> str:
    return f'{path}: "{format_range(time_range)}" overlaps {other_path} "{format_range(other)}"'


def _same_day_overlaps(placed: list[_Placed]) -> list[str]:
    errors = []
    for index, (path, time_range) in enumerate(placed):
        start, end = _span(time_range)
        for other_path, other in placed[:index]:
            other_start, other_end = _span(other)
            if start < other_end and other_start < end:
                errors.append(_overlap(path, time_range, other_path, other))
    return errors


def _tail_overlaps(previous: list[_Placed], today: list[_Placed]) -> list[str]:
    """The part of yesterday's overnight ranges after midnight must not overlap today's ranges."""
    errors = []
    for path, time_range in today:
        for other_path, other in previous:
            if _span(time_range)[0] < _span(other)[1] - DAY_MINUTES:
                errors.append(_overlap(path, time_range, other_path, other))
    return errors


def _holidays(value: Any, errors: list[str]) -> tuple[str | None, str | None, str | None]:
    """Country, subdivision and language, each checked against what the holidays package knows."""
    block = None if value is None else _mapping(value, "holidays", HOLIDAY_KEYS, errors)
    if block is None:
        return None, None, None
    country = _text(block.get("country"), "holidays.country", errors, required=True)
    subdivision = _text(block.get("subdivision"), "holidays.subdivision", errors, required=False)
    language = _text(block.get("language"), "holidays.language", errors, required=False)
    if country is not None and country not in _countries():
        errors.append(f'holidays.country: unknown country "{country}"')
    elif country is not None:
        if subdivision is not None and subdivision not in _countries()[country]:
            errors.append(f'holidays.subdivision: "{subdivision}" is not a subdivision of {country}')
        languages = _languages().get(country, [])
        if language is not None and language not in languages:
            available = ", ".join(languages) or "none"
            errors.append(f'holidays.language: "{language}" is not available for {country} ({available})')
    return country, subdivision, language


@functools.cache
def _countries() -> dict[str, list[str]]:
    return holidays.list_supported_countries()


@functools.cache
def _languages() -> dict[str, list[str]]:
    return holidays.list_localized_countries()


def _dated_entries(value: Any, errors: list[str]) -> tuple[DatedHours, ...]:
    """The dated entries; two of them on the same date would make the result depend on their order."""
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, Sequence):
        errors.append(f"dated: expected a list of entries, got {type(value).__name__}")
        return ()
    placed: list[tuple[str, DatedHours]] = []
    for index, item in enumerate(value):
        entry = _dated_entry(item, f"dated[{index}]", errors)
        if entry is None:
            continue
        for other_path, other in placed:
            if entry.start <= other.end and other.start <= entry.end:
                errors.append(f"dated[{index}]: {_period(entry)} overlaps {other_path} ({_period(other)})")
        placed.append((f"dated[{index}]", entry))
    return tuple(entry for _, entry in placed)


def _period(entry: DatedHours) -> str:
    return f"{entry.start.isoformat()}..{entry.end.isoformat()}"


def _dated_entry(value: Any, path: str, errors: list[str]) -> DatedHours | None:
    entry = _mapping(value, path, DATED_KEYS, errors)
    if entry is None:
        return None
    before = len(errors)
    start, end = _dated_period(entry, path, errors)
    label = _text(entry.get("label"), f"{path}.label", errors, required=True)
    hours = entry.get("hours")
    placed = [] if hours is None else _ranges(hours, f"{path}.hours", errors)
    if start is not None and end is not None and start < end:
        errors += _tail_overlaps(placed, placed)  # each night of the entry runs into its next day
    if len(errors) > before or start is None or end is None or label is None:
        return None
    return DatedHours(start, end, label, tuple(r for _, r in placed))


def _dated_period(entry: Mapping[Any, Any], path: str, errors: list[str]) -> tuple[date | None, date | None]:
    """Either ``date`` (one day) or ``from`` and ``to`` (both inclusive)."""
    if "date" in entry:
        if "from" in entry or "to" in entry:
            errors.append(f"{path}: give either date or from/to, not both")
            return None, None
        day = _date(entry["date"], f"{path}.date", errors)
        return day, day
    if "from" not in entry and "to" not in entry:
        errors.append(f"{path}: missing date (or from and to)")
        return None, None
    start = _date(entry.get("from"), f"{path}.from", errors)
    end = _date(entry.get("to"), f"{path}.to", errors)
    if start is not None and end is not None and end < start:
        errors.append(f"{path}.to: {end.isoformat()} is before from {start.isoformat()}")
        return None, None
    return start, end


def _date(value: Any, path: str, errors: list[str]) -> date | None:
    """A date object (YAML) or a YYYY-MM-DD string (JSON); a date-time is refused, not truncated."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and ISO_DATE.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    if value is None:
        errors.append(f"{path}: missing")
    else:
        errors.append(f"{path}: {_shown(value)} is not a date (YYYY-MM-DD)")
    return None


def _override(value: Any, errors: list[str]) -> Override | None:
    block = None if value is None else _mapping(value, "override", OVERRIDE_KEYS, errors)
    if block is None:
        return None
    state = _text(block.get("state"), "override.state", errors, required=True)
    if state is not None and state not in ("open", "closed"):
        errors.append(f'override.state: "{state}" is not open or closed')
    until = _aware(block.get("until"), "override.until", errors)
    reason = block.get("reason", "")
    if not isinstance(reason, str):
        errors.append(f"override.reason: expected a string, got {reason!r}")
    if state not in ("open", "closed") or until is None or not isinstance(reason, str):
        return None
    checked: Literal["open", "closed"] = "open" if state == "open" else "closed"
    return Override(checked, until, reason)


def _aware(value: Any, path: str, errors: list[str]) -> datetime | None:
    """An instant with its UTC offset: a naive one would be read in whatever zone the server runs in."""
    if value is None:
        errors.append(f"{path}: missing")
        return None
    instant = value if isinstance(value, datetime) else _iso_datetime(value)
    if instant is None:
        errors.append(f"{path}: {_shown(value)} is not an ISO date-time")
    elif instant.utcoffset() is None:
        errors.append(f"{path}: {_shown(value)} has no UTC offset")
    else:
        return instant
    return None


def _iso_datetime(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _shown(value: Any) -> str:
    """Strings in double quotes as the admin typed them; anything else as Python shows it."""
    return f'"{value}"' if isinstance(value, str) else repr(value)
