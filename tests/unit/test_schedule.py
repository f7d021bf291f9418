from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from cti.ivr.schedule import (
    DatedHours,
    OpeningHours,
    Override,
    ScheduleError,
    ScheduleState,
    ScheduleStatus,
    TimeRange,
    next_closing,
    next_opening,
    state_at,
)
from cti.ivr.schedule_parse import dump_opening_hours, parse_opening_hours, validate_override

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
WEEKDAYS = {day: ["08:00-18:00"] for day in ("monday", "tuesday", "wednesday", "thursday", "friday")}
OPEN = ScheduleState(ScheduleStatus.OPEN)
CLOSED = ScheduleState(ScheduleStatus.CLOSED)


def hours(weekly: dict[str, Any], timezone: str = "Europe/Paris", **extra: Any) -> OpeningHours:
    return parse_opening_hours({"timezone": timezone, "weekly": weekly, **extra})


def paris(month: int, day: int, hour: int = 0, minute: int = 0, *, fold: int = 0, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=PARIS, fold=fold)


def new_york(month: int, day: int, hour: int = 0, minute: int = 0, *, fold: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=NEW_YORK, fold=fold)


def real_length(start: datetime | None, end: datetime | None) -> timedelta:
    """Elapsed time; subtracting datetimes that share a tzinfo would give the wall-clock difference."""
    assert start is not None and end is not None
    return end.astimezone(UTC) - start.astimezone(UTC)


def just_before(instant: datetime) -> datetime:
    """One microsecond earlier in real time (minus on a zoned datetime would move its wall clock)."""
    return instant.astimezone(UTC) - timedelta(microseconds=1)


def opens(schedule: OpeningHours, *instants: datetime) -> list[bool]:
    return [state_at(schedule, instant).is_open for instant in instants]


# --- weekly ranges -------------------------------------------------------------------------------------


def test_several_ranges_a_day_with_a_lunch_break() -> None:
    h = hours({"monday": ["08:30-12:00", "13:30-18:00"]})
    times = ((8, 29), (8, 30), (11, 59), (12, 0), (13, 30), (17, 59), (18, 0))
    checked = [paris(11, 23, hour, minute) for hour, minute in times]
    assert opens(h, *checked) == [False, True, True, False, True, True, False]
    assert state_at(h, paris(11, 23, 12, 30)) == CLOSED
    assert state_at(h, paris(11, 24, 10)) == CLOSED  # Tuesday is not listed: closed


def test_overnight_range_belongs_to_the_day_it_starts_on() -> None:
    h = hours({"friday": ["22:00-06:00"]})
    checked = [paris(11, 27, 21, 59), paris(11, 27, 22), paris(11, 28, 3), paris(11, 28, 6), paris(11, 28, 7)]
    assert opens(h, *checked) == [False, True, True, False, False]


def test_overnight_range_wraps_from_sunday_into_monday() -> None:
    h = hours({"sunday": ["20:00-04:00"]})
    assert opens(h, paris(11, 30, 2), paris(11, 30, 4)) == [True, False]
    assert next_closing(h, paris(11, 29, 21)) == paris(11, 30, 4)
    assert next_opening(h, paris(11, 30, 5)) == paris(12, 6, 20)


def test_end_at_midnight_and_the_whole_day() -> None:
    h = hours({"monday": ["18:00-00:00"], "wednesday": ["00:00-00:00"]})
    assert opens(h, paris(11, 23, 23, 59), paris(11, 24, 0), paris(11, 24, 23, 59), paris(11, 25, 0)) == [
        True, False, False, True]
    assert next_closing(h, paris(11, 23, 19)) == paris(11, 24)
    assert next_closing(h, paris(11, 25)) == paris(11, 26)
    assert hours({"monday": ["18:00-24:00"]}) == hours({"monday": ["18:00-00:00"]})


def test_short_day_names_are_accepted() -> None:
    assert hours({"mon": ["08:00-12:00"], "sun": []}) == hours({"monday": ["08:00-12:00"], "sunday": []})


def test_naive_instants_are_refused() -> None:
    h = hours(WEEKDAYS)
    for question in (state_at, next_opening, next_closing):
        with pytest.raises(ScheduleError, match="has no time zone") as caught:
            question(h, datetime(2026, 11, 23, 10))
        assert caught.value.code == "ivr.schedule_invalid"


def test_hand_built_hours_with_an_unknown_zone_or_country_are_refused() -> None:
    with pytest.raises(ScheduleError, match=r'^timezone: unknown time zone "Mars/Olympus"$'):
        state_at(OpeningHours("Mars/Olympus", {}), paris(11, 23))
    with pytest.raises(ScheduleError, match=r"^holidays: .*XX"):
        next_opening(OpeningHours("Europe/Paris", {}, holiday_country="XX"), paris(11, 23))


def test_weekly_hours_cannot_be_changed_behind_the_schedule() -> None:
    weekly = {0: (TimeRange(time(8), time(12)),)}
    h = OpeningHours("Europe/Paris", weekly)
    weekly[1] = (TimeRange(time(8), time(12)),)
    assert state_at(h, paris(11, 24, 10)) == CLOSED
    with pytest.raises(TypeError):
        h.weekly[2] = ()  # type: ignore[index]


# --- daylight saving time -------------------------------------------------------------------------------


def test_range_across_the_spring_forward_lasts_one_real_hour() -> None:
    h = hours({"sunday": ["01:00-03:00"]})
    assert state_at(h, paris(3, 29, 1, 30)).is_open
    opening, closing = next_opening(h, paris(3, 28, 12)), next_closing(h, paris(3, 29, 1, 30))
    assert opening == paris(3, 29, 1) and closing == paris(3, 29, 3)
    assert closing is not None and closing.utcoffset() == timedelta(hours=2)
    assert real_length(opening, closing) == timedelta(hours=1)
    ny = hours({"sunday": ["01:00-03:00"]}, timezone="America/New_York")
    assert real_length(next_opening(ny, new_york(3, 7)), next_closing(ny, new_york(3, 8, 1, 30))) == timedelta(hours=1)


def test_opening_inside_the_spring_gap_happens_when_the_gap_ends() -> None:
    h = hours({"sunday": ["02:30-05:00"]})
    opening = next_opening(h, paris(3, 28, 12))
    assert opening is not None and opening.astimezone(UTC) == datetime(2026, 3, 29, 1, tzinfo=UTC)
    assert (opening.hour, opening.minute, opening.utcoffset()) == (3, 0, timedelta(hours=2))
    assert not state_at(h, just_before(opening)).is_open and state_at(h, opening).is_open
    ny = hours({"sunday": ["02:30-05:00"]}, timezone="America/New_York")
    opening = next_opening(ny, new_york(3, 7, 12))
    assert opening is not None and opening.astimezone(UTC) == datetime(2026, 3, 8, 7, tzinfo=UTC)
    assert (opening.hour, opening.utcoffset()) == (3, timedelta(hours=-4))


def test_whole_day_range_lasts_the_real_length_of_the_day() -> None:
    h = hours({"sunday": ["00:00-00:00"]})
    assert real_length(next_opening(h, paris(3, 28)), next_closing(h, paris(3, 29))) == timedelta(hours=23)
    assert real_length(next_opening(h, paris(10, 24)), next_closing(h, paris(10, 25))) == timedelta(hours=25)
    ny = hours({"sunday": ["00:00-00:00"]}, timezone="America/New_York")
    assert real_length(next_opening(ny, new_york(10, 31)), next_closing(ny, new_york(11, 1))) == timedelta(hours=25)


def test_office_hours_stay_wall_clock_on_dst_days() -> None:
    h = hours({"sunday": ["08:00-18:00"]})
    for day in (paris(3, 29), paris(10, 25)):
        opening = next_opening(h, day)
        closing = next_closing(h, opening) if opening is not None else None
        assert opening is not None and closing is not None
        assert (opening.hour, closing.hour) == (8, 18)
        assert real_length(opening, closing) == timedelta(hours=10)


def test_ambiguous_start_takes_the_first_occurrence() -> None:
    h = hours({"sunday": ["02:30-05:00"]})
    opening = next_opening(h, paris(10, 24, 12))
    assert opening is not None and opening.astimezone(UTC) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert opening.utcoffset() == timedelta(hours=2)
    assert opens(h, paris(10, 25, 2, 15), paris(10, 25, 2, 15, fold=1)) == [False, True]
    ny = hours({"sunday": ["01:30-04:00"]}, timezone="America/New_York")
    opening = next_opening(ny, new_york(10, 31, 12))
    assert opening is not None and opening.astimezone(UTC) == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)


def test_ambiguous_end_also_takes_the_first_occurrence() -> None:
    h = hours({"sunday": ["00:00-02:30"]})
    assert opens(h, paris(10, 25, 2, 15), paris(10, 25, 2, 15, fold=1)) == [True, False]
    closing = next_closing(h, paris(10, 25, 1))
    assert closing is not None and closing.astimezone(UTC) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)


# --- public holidays and dated entries ------------------------------------------------------------------


def test_public_holiday_closes_with_its_name() -> None:
    english = hours(WEEKDAYS, holidays={"country": "FR"})
    assert state_at(english, paris(7, 14, 10)) == ScheduleState(ScheduleStatus.HOLIDAY, "National Day", "National Day")
    french = hours(WEEKDAYS, holidays={"country": "FR", "language": "fr"})
    assert state_at(french, paris(7, 14, 10)).holiday_name == "Fête nationale"
    assert state_at(french, paris(7, 15, 10)) == OPEN


def test_subdivision_holidays_apply_only_there() -> None:
    moselle = hours(WEEKDAYS, holidays={"country": "FR", "subdivision": "57"})
    assert state_at(moselle, paris(4, 3, 10)).holiday_name == "Good Friday"
    assert state_at(hours(WEEKDAYS, holidays={"country": "FR"}), paris(4, 3, 10)) == OPEN
    bavaria = hours(WEEKDAYS, "Europe/Berlin", holidays={"country": "DE", "subdivision": "BY"})
    berlin = hours(WEEKDAYS, "Europe/Berlin", holidays={"country": "DE", "subdivision": "BE"})
    epiphany = datetime(2026, 1, 6, 10, tzinfo=ZoneInfo("Europe/Berlin"))
    assert state_at(bavaria, epiphany).status is ScheduleStatus.HOLIDAY
    assert state_at(berlin, epiphany) == OPEN


def test_overnight_range_from_the_day_before_a_holiday_stays_open() -> None:
    h = hours({"monday": ["22:00-06:00"], "tuesday": ["22:00-06:00"]}, holidays={"country": "FR"})
    assert state_at(h, paris(7, 14, 3)) == OPEN
    assert state_at(h, paris(7, 14, 7)).status is ScheduleStatus.HOLIDAY
    assert state_at(h, paris(7, 15, 3)) == CLOSED  # the holiday's own night shift does not run


def test_dated_closure_is_reported_as_a_holiday_with_its_label() -> None:
    h = hours(WEEKDAYS, dated=[{"from": "2026-08-10", "to": "2026-08-14", "label": "Summer closure"}])
    closure = ScheduleState(ScheduleStatus.HOLIDAY, "Summer closure", "Summer closure")
    assert [state_at(h, paris(8, day, 10)) for day in (10, 14)] == [closure, closure]
    assert state_at(h, paris(8, 17, 10)) == OPEN
    assert next_opening(h, paris(8, 7, 18, 30)) == paris(8, 17, 8)


def test_dated_half_day() -> None:
    h = hours(WEEKDAYS, holidays={"country": "FR"},
              dated=[{"date": date(2026, 12, 24), "hours": ["08:00-12:00"], "label": "Christmas Eve"}])
    assert state_at(h, paris(12, 24, 10)) == ScheduleState(ScheduleStatus.OPEN, "Christmas Eve")
    assert state_at(h, paris(12, 24, 14)) == ScheduleState(ScheduleStatus.CLOSED, "Christmas Eve")
    assert next_closing(h, paris(12, 24, 10)) == paris(12, 24, 12)
    assert next_opening(h, paris(12, 24, 12)) == paris(12, 28, 8)  # 25 Dec is a holiday, then the weekend


def test_dated_hours_open_on_a_public_holiday() -> None:
    h = hours(WEEKDAYS, holidays={"country": "FR"},
              dated=[{"date": "2026-07-14", "hours": ["09:00-12:00"], "label": "National Day duty"}])
    assert state_at(h, paris(7, 14, 10)) == ScheduleState(ScheduleStatus.OPEN, "National Day duty")
    assert state_at(h, paris(7, 14, 13)) == ScheduleState(ScheduleStatus.CLOSED, "National Day duty")
    assert next_opening(h, paris(7, 13, 18, 30)) == paris(7, 14, 9)


# --- overrides ------------------------------------------------------------------------------------------


def test_closed_override_until_it_expires() -> None:
    h = hours(WEEKDAYS, override={"state": "closed", "until": "2026-11-23T11:00:00+01:00", "reason": "Staff meeting"})
    assert state_at(h, paris(11, 23, 10, 59)) == ScheduleState(ScheduleStatus.OVERRIDE_CLOSED, "Staff meeting")
    assert state_at(h, paris(11, 23, 11)) == OPEN
    assert state_at(h, datetime(2026, 11, 23, 10, 0, tzinfo=UTC)) == OPEN  # 11:00 in Paris: expired


def test_open_override_until_it_expires() -> None:
    h = hours(WEEKDAYS, override={"state": "open", "until": "2026-11-23T20:00:00+01:00", "reason": "Storm backlog"})
    state = state_at(h, paris(11, 23, 19, 59))
    assert state == ScheduleState(ScheduleStatus.OVERRIDE_OPEN, "Storm backlog") and state.is_open
    assert state_at(h, paris(11, 23, 20)) == CLOSED


# --- next opening / next closing ------------------------------------------------------------------------


def test_next_opening_across_the_weekend_and_when_already_open() -> None:
    h = hours(WEEKDAYS)
    assert next_opening(h, paris(11, 27, 18, 30)) == paris(11, 30, 8)
    already = next_opening(h, datetime(2026, 11, 23, 9, 15, tzinfo=UTC))
    assert already == paris(11, 23, 10, 15) and already is not None and already.tzinfo == PARIS


def test_next_opening_across_a_holiday() -> None:
    h = hours(WEEKDAYS, holidays={"country": "FR"})
    assert next_opening(h, paris(7, 13, 18, 30)) == paris(7, 15, 8)


def test_next_opening_skips_a_closed_override() -> None:
    until_open = hours(WEEKDAYS, override={"state": "closed", "until": "2026-11-24T10:00:00+01:00"})
    assert next_opening(until_open, paris(11, 23, 9)) == paris(11, 24, 10)
    until_closed = hours(WEEKDAYS, override={"state": "closed", "until": "2026-11-23T20:00:00+01:00"})
    assert next_opening(until_closed, paris(11, 23, 9)) == paris(11, 24, 8)
    assert next_opening(until_closed, paris(11, 23, 21)) == paris(11, 24, 8)  # expired: plain schedule


def test_next_opening_is_none_without_any_range() -> None:
    assert next_opening(hours({}), paris(11, 23)) is None
    assert next_opening(hours({"sunday": []}, override={"state": "open", "until": "2026-11-23T20:00:00+01:00"}),
                        paris(11, 23, 21)) is None


def test_next_closing() -> None:
    h = hours({"monday": ["08:00-12:00", "12:00-18:00"], "friday": ["22:00-06:00"], "saturday": ["06:00-12:00"]})
    assert next_closing(h, paris(11, 23, 10)) == paris(11, 23, 18)  # touching ranges are one opening
    assert next_closing(h, paris(11, 27, 23)) == paris(11, 28, 12)
    assert next_closing(h, paris(11, 23, 19)) == paris(11, 23, 19)  # already closed
    every_day = hours({day: ["00:00-00:00"] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")})
    assert next_closing(every_day, paris(11, 23)) is None


def test_next_closing_with_overrides() -> None:
    open_late = hours(WEEKDAYS, override={"state": "open", "until": "2026-11-23T20:00:00+01:00"})
    assert next_closing(open_late, paris(11, 23, 19)) == paris(11, 23, 20)
    open_early = hours(WEEKDAYS, override={"state": "open", "until": "2026-11-23T09:00:00+01:00"})
    assert next_closing(open_early, paris(11, 23, 7)) == paris(11, 23, 18)  # the schedule carries on
    closed = hours(WEEKDAYS, override={"state": "closed", "until": "2026-11-23T20:00:00+01:00"})
    assert next_closing(closed, paris(11, 23, 10)) == paris(11, 23, 10)


# --- parsing ---------------------------------------------------------------------------------------------

VALID: dict[str, Any] = {
    "timezone": "Europe/Paris",
    "weekly": {"monday": ["08:30-12:00", "13:30-18:00"], "friday": ["22:00-06:00"], "sunday": []},
    "holidays": {"country": "FR", "subdivision": None, "language": "fr"},
    "dated": [{"date": "2026-12-24", "label": "Christmas Eve", "hours": ["08:00-12:00"]},
              {"from": "2026-08-10", "to": "2026-08-14", "label": "Summer closure"}],
    "override": {"state": "closed", "until": "2026-11-23T18:00:00+01:00", "reason": "Staff meeting"},
}

PARSE_ERRORS = [
    ({"timezone": "Mars/Olympus"}, 'timezone: unknown time zone "Mars/Olympus"'),
    ({"timezone": None}, "timezone: missing"),
    ({"weekly": None}, "weekly: missing"),
    ({"colour": "blue"}, "colour: unknown key (expected one of timezone, weekly, holidays, dated, override)"),
    ({"weekly": {"funday": []}}, "weekly.funday: unknown day (expected monday..sunday or mon..sun)"),
    ({"weekly": {"monday": [], "mon": []}}, "weekly.mon: monday is given twice"),
    ({"weekly": {"monday": ["08:00-12:00", "25:00-26:00"]}}, 'weekly.monday[1]: "25:00-26:00" is not HH:MM-HH:MM'),
    ({"weekly": {"monday": ["8:00-12:00"]}}, 'weekly.monday[0]: "8:00-12:00" is not HH:MM-HH:MM'),
    ({"weekly": {"monday": ["12:60-13:00"]}}, 'weekly.monday[0]: "12:60-13:00" is not HH:MM-HH:MM'),
    ({"weekly": {"monday": ["24:00-01:00"]}}, 'weekly.monday[0]: "24:00-01:00" is not HH:MM-HH:MM'),
    ({"weekly": {"monday": [1320]}}, "weekly.monday[0]: 1320 is not HH:MM-HH:MM"),
    ({"weekly": {"monday": "08:00-12:00"}},
     "weekly.monday: expected a list of \"HH:MM-HH:MM\" ranges, got '08:00-12:00'"),
    ({"weekly": {"monday": ["08:00-08:00"]}},
     'weekly.monday[0]: "08:00-08:00" is empty (only 00:00-00:00 means the whole day)'),
    ({"weekly": {"monday": ["08:30-12:00", "11:00-13:00"]}},
     'weekly.monday[1]: "11:00-13:00" overlaps weekly.monday[0] "08:30-12:00"'),
    ({"weekly": {"friday": ["22:00-06:00"], "saturday": ["05:00-09:00"]}},
     'weekly.saturday[0]: "05:00-09:00" overlaps weekly.friday[0] "22:00-06:00"'),
    ({"weekly": {"monday": ["00:00-00:00"], "sunday": ["23:00-02:00"]}},
     'weekly.monday[0]: "00:00-00:00" overlaps weekly.sunday[0] "23:00-02:00"'),
    ({"holidays": {"country": "XX"}}, 'holidays.country: unknown country "XX"'),
    ({"holidays": {"subdivision": "57"}}, "holidays.country: missing"),
    ({"holidays": {"country": "FR", "subdivision": "BY"}}, 'holidays.subdivision: "BY" is not a subdivision of FR'),
    ({"holidays": {"country": "FR", "language": "de"}},
     'holidays.language: "de" is not available for FR (en_US, fr, th, uk)'),
    ({"holidays": {"country": "FR", "region": "57"}},
     "holidays.region: unknown key (expected one of country, subdivision, language)"),
    ({"dated": [{"from": "2026-08-10", "to": "2026-08-01", "label": "x"}]},
     "dated[0].to: 2026-08-01 is before from 2026-08-10"),
    ({"dated": [{"from": "2026-08-10", "to": "2026-08-14", "label": "a"},
                {"from": "2026-08-12", "to": "2026-08-20", "label": "b"}]},
     "dated[1]: 2026-08-12..2026-08-20 overlaps dated[0] (2026-08-10..2026-08-14)"),
    ({"dated": [{"date": "2026-13-01", "label": "x"}]}, 'dated[0].date: "2026-13-01" is not a date (YYYY-MM-DD)'),
    ({"dated": [{"date": datetime(2026, 12, 24), "label": "x"}]},
     "dated[0].date: datetime.datetime(2026, 12, 24, 0, 0) is not a date (YYYY-MM-DD)"),
    ({"dated": [{"date": "2026-12-24", "to": "2026-12-25", "label": "x"}]},
     "dated[0]: give either date or from/to, not both"),
    ({"dated": [{"label": "x"}]}, "dated[0]: missing date (or from and to)"),
    ({"dated": [{"from": "2026-12-24", "label": "x"}]}, "dated[0].to: missing"),
    ({"dated": [{"date": "2026-12-24"}]}, "dated[0].label: missing"),
    ({"dated": [{"date": "2026-12-24", "label": "x", "note": "y"}]},
     "dated[0].note: unknown key (expected one of date, from, to, label, hours)"),
    ({"dated": [{"date": "2026-12-24", "label": "x", "hours": ["12:00-08:00", "07:00-13:00"]}]},
     'dated[0].hours[1]: "07:00-13:00" overlaps dated[0].hours[0] "12:00-08:00"'),
    ({"dated": [{"from": "2026-12-24", "to": "2026-12-25", "label": "x", "hours": ["06:00-08:00", "20:00-07:00"]}]},
     'dated[0].hours[0]: "06:00-08:00" overlaps dated[0].hours[1] "20:00-07:00"'),
    ({"override": {"state": "maybe", "until": "2026-11-23T18:00:00+01:00"}},
     'override.state: "maybe" is not open or closed'),
    ({"override": {"state": "closed", "until": "2026-11-23T18:00:00"}},
     'override.until: "2026-11-23T18:00:00" has no UTC offset'),
    ({"override": {"state": "closed", "until": datetime(2026, 11, 23, 18)}},
     "override.until: datetime.datetime(2026, 11, 23, 18, 0) has no UTC offset"),
    ({"override": {"state": "closed", "until": "tomorrow"}}, 'override.until: "tomorrow" is not an ISO date-time'),
    ({"override": {"state": "closed"}}, "override.until: missing"),
    ({"override": {"state": "closed", "until": "2026-11-23T18:00:00Z", "why": "x"}},
     "override.why: unknown key (expected one of state, until, reason)"),
]


@pytest.mark.parametrize(("change", "message"), PARSE_ERRORS, ids=[message for _, message in PARSE_ERRORS])
def test_each_parse_error_names_its_path(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        parse_opening_hours({**VALID, **change})
    assert caught.value.errors == [message]
    assert str(caught.value) == message


def test_not_a_mapping_is_refused() -> None:
    with pytest.raises(ScheduleError, match=r"^opening hours: expected a mapping, got list$"):
        parse_opening_hours([])  # type: ignore[arg-type]


def test_all_errors_are_reported_together() -> None:
    with pytest.raises(ScheduleError) as caught:
        parse_opening_hours({"timezone": "Nowhere/Town", "weekly": {"monday": ["9-5"]},
                             "override": {"state": "closed", "until": "2026-11-23T18:00:00"}})
    assert caught.value.errors == ['timezone: unknown time zone "Nowhere/Town"',
                                   'weekly.monday[0]: "9-5" is not HH:MM-HH:MM',
                                   'override.until: "2026-11-23T18:00:00" has no UTC offset']
    assert str(caught.value) == "; ".join(caught.value.errors)
    assert caught.value.code == "ivr.schedule_invalid"


def test_yaml_dates_and_datetimes_are_accepted() -> None:
    text = """
timezone: Europe/Paris
weekly: {mon: ["08:00-12:00"]}
dated: [{date: 2026-12-24, label: Christmas Eve, hours: ["08:00-12:00"]}]
override: {state: open, until: 2026-11-23T18:00:00+01:00}
"""
    h = parse_opening_hours(yaml.safe_load(text))
    christmas_eve = DatedHours(date(2026, 12, 24), date(2026, 12, 24), "Christmas Eve", (TimeRange(time(8), time(12)),))
    assert h.dated == (christmas_eve,)
    assert h.override == Override("open", paris(11, 23, 18), "")


def test_dump_gives_back_the_admin_shape_and_round_trips() -> None:
    h = parse_opening_hours(VALID)
    assert dump_opening_hours(h) == VALID
    assert parse_opening_hours(dump_opening_hours(h)) == h
    assert parse_opening_hours(json.loads(json.dumps(dump_opening_hours(h)))) == h
    assert parse_opening_hours(yaml.safe_load(yaml.safe_dump(dump_opening_hours(h)))) == h


def test_built_schedule_round_trips() -> None:
    h = OpeningHours(
        "America/New_York",
        {0: (TimeRange(time(0), time(0)),), 4: (TimeRange(time(22), time(6)), TimeRange(time(12), time(13, 30)))},
        holiday_country="US", holiday_subdivision="NY",
        dated=(DatedHours(date(2026, 7, 3), date(2026, 7, 5), "Long weekend"),),
        override=Override("open", new_york(11, 23, 18, 30), "Backlog"),
    )
    assert parse_opening_hours(dump_opening_hours(h)) == h


# --- validate_override ----------------------------------------------------------------------------------


def test_override_must_end_after_now_and_within_31_days() -> None:
    now = paris(11, 23, 10)
    validate_override(Override("closed", now + timedelta(hours=2)), now)
    validate_override(Override("open", now + timedelta(days=31)), now)
    cases = [
        (now, "override.until: 2026-11-23T10:00:00+01:00 is not after now (2026-11-23T10:00:00+01:00)"),
        (now - timedelta(minutes=1),
         "override.until: 2026-11-23T09:59:00+01:00 is not after now (2026-11-23T10:00:00+01:00)"),
        (now + timedelta(days=31, seconds=1),
         "override.until: 2026-12-24T10:00:01+01:00 is more than 31 days ahead (use a dated entry)"),
        (datetime(2026, 11, 23, 12), "override.until: 2026-11-23T12:00:00 has no UTC offset"),
    ]
    for until, message in cases:
        with pytest.raises(ScheduleError) as caught:
            validate_override(Override("closed", until), now)
        assert caught.value.errors == [message]
    with pytest.raises(ScheduleError, match=r"^now: 2026-11-23T10:00:00 has no UTC offset$"):
        validate_override(Override("closed", now), datetime(2026, 11, 23, 10))


# --- properties -----------------------------------------------------------------------------------------

QUARTERS = st.integers(0, 95).map(lambda quarter: time(quarter // 4, quarter % 4 * 15))
RANGES = st.tuples(QUARTERS, QUARTERS).filter(lambda pair: pair[0] != pair[1] or pair[0] == time(0))
WEEKLY = st.dictionaries(st.integers(0, 6), st.lists(RANGES.map(lambda pair: TimeRange(*pair)), max_size=2).map(tuple),
                         max_size=3)
# Instants around both 2026 changes of time in Paris, so gaps and repeated hours are exercised.
INSTANTS = st.one_of(
    st.datetimes(datetime(2026, 3, 26), datetime(2026, 4, 1), timezones=st.just(UTC)),
    st.datetimes(datetime(2026, 10, 22), datetime(2026, 10, 28), timezones=st.just(UTC)),
)
STEP = timedelta(minutes=15)
# Arithmetic and equality are done in UTC: adding to a zoned datetime moves its wall clock (and may land in a
# gap), and by PEP 495 a time in a repeated hour never equals the same instant in another zone.


def steps(start: datetime, end: datetime) -> list[datetime]:
    """Every 15 minutes of real time in [start, end) (in UTC: wall-clock arithmetic would skip or repeat)."""
    first = start.astimezone(UTC)
    count = int((end.astimezone(UTC) - first) / STEP)
    return [first + index * STEP for index in range(count + 1) if first + index * STEP < end]


@settings(max_examples=40, deadline=None, database=None)
@given(WEEKLY, INSTANTS)
def test_next_opening_is_the_first_open_instant(weekly: dict[int, tuple[TimeRange, ...]], instant: datetime) -> None:
    h = OpeningHours("Europe/Paris", weekly)
    found = next_opening(h, instant)
    if not any(weekly.values()):
        assert found is None
        return
    assert found is not None and found >= instant and state_at(h, found).is_open
    assert not any(opens(h, *steps(instant, found)))
    assert found.astimezone(UTC) == instant or not state_at(h, just_before(found)).is_open


@settings(max_examples=40, deadline=None, database=None)
@given(WEEKLY, INSTANTS)
def test_next_closing_is_the_first_closed_instant(weekly: dict[int, tuple[TimeRange, ...]], instant: datetime) -> None:
    h = OpeningHours("Europe/Paris", weekly)
    found = next_closing(h, instant)
    assert found is not None  # at most three days in the week have ranges: it always closes
    assert found >= instant and not state_at(h, found).is_open
    assert all(opens(h, *steps(instant, found)))
    assert found.astimezone(UTC) == instant or state_at(h, just_before(found)).is_open
