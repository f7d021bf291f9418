"""Call reports on rows of the calls table (SQLite and PostgreSQL): classes, grouping by hour, day, number and
queue in the desk's time zone, service level per queue target, CSV, and the Erlang C staffing suggestion."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from cti.call_records import open_call
from cti.db import Database
from cti.db.models import CallRecord
from cti.settings import SupervisionSettings
from cti.supervision.reports import (
    CallFacts,
    ReportInvalid,
    ReportQuery,
    build_report,
    call_class,
    day_bounds,
    load_calls,
    parse_query,
    report_csv,
    staffing,
)

PARIS = ZoneInfo("Europe/Paris")
SETTINGS = SupervisionSettings()
LEVELS = {"support": 20}
OPEN = "screen:default > hours:open > welcome > language:en > main:1 > technical > queue:support"


def paris(day: int, hour: int, minute: int = 0) -> datetime:
    """An instant of March 2025 given in Paris time (UTC+1 then)."""
    return datetime(2025, 3, day, hour, minute, tzinfo=PARIS)


# (started, called number, queue, outcome, answered, wait, talk, path)
ROWS = [
    (paris(3, 9, 10), "5551000", "support", "answered", True, 10.0, 100.0, OPEN),
    (paris(3, 9, 20), "5551000", "support", "answered", True, 30.0, 200.0, OPEN),
    (paris(3, 9, 40), "5552000", "billing", "abandoned", False, 50.0, None, "welcome > queue:billing > abandoned(50s)"),
    (paris(3, 10, 5), "5551000", None, "voicemail", False, None, None, "hours:open > main:9 > voicemail:request"),
    (paris(3, 20, 0), "5551000", None, "voicemail", False, None, None, "hours:closed > closed > voicemail:closed"),
    (paris(3, 10, 30), "+3315551000", None, "transferred", False, None, None, "hours:open > main:3"),
    (paris(4, 0, 30), "5551000", "support", "answered", True, 5.0, 300.0, OPEN),
    (paris(4, 9, 5), "5551000", None, "abandoned", False, None, None, "hours:open > welcome"),
    (paris(5, 0, 10), "5551000", "support", "answered", True, 1.0, 10.0, OPEN),  # the day after the range
    (paris(2, 23, 50), "5551000", "support", "answered", True, 1.0, 10.0, OPEN),  # the day before
]


async def _insert(db: Database) -> None:
    for index, (started, number, queue, outcome, answered, wait, talk, path) in enumerate(ROWS):
        await open_call(db, CallRecord(
            uniqueid=f"r.{index}", channel="PJSIP/trunk", called_number=number, started_at=started, queue=queue,
            outcome=outcome, answered_at=started + timedelta(seconds=wait or 0) if answered else None, wait_s=wait,
            talk_s=talk, path=path))  # fmt: skip


async def _report(db: Database, group: str, levels: dict[str, int] = LEVELS) -> dict[str, object]:
    query = parse_query({"from": "2025-03-03", "to": "2025-03-04", "group": group}, date(2025, 3, 10))
    calls = await load_calls(db, *day_bounds(query.first, query.last, PARIS))
    return build_report(calls, query, SETTINGS, levels)


def _facts(path: str = "", outcome: str = "in_progress", answered: bool = False) -> CallFacts:
    now = datetime.now(UTC)
    return CallFacts(now, "5551000", None, outcome, now if answered else None, None, None, path)


def test_each_call_counts_in_one_class_out_of_hours_first() -> None:
    assert call_class(_facts("screen:default > hours:closed > closed > voicemail:closed", "voicemail")) == "closed"
    assert call_class(_facts("hours:holiday > holiday", "abandoned")) == "closed"
    assert call_class(_facts("hours:override_closed", "to_voicemail")) == "closed"
    assert call_class(_facts("hours:open > queue:support", "abandoned", answered=True)) == "answered"
    assert call_class(_facts("hours:open > queue:support", "answered")) == "answered"
    for outcome in ("voicemail", "voicemail_empty", "to_voicemail"):
        assert call_class(_facts("hours:open > main:9", outcome)) == "voicemail"
    assert call_class(_facts("hours:open > main:9", "abandoned")) == "abandoned"
    assert call_class(_facts("hours:open", "transferred")) == "other"
    assert call_class(_facts("agent:alice:answered(3s) > main:1", "in_progress")) == "other"


async def test_grouped_by_day_in_the_desks_time_zone(database: Database) -> None:
    await _insert(database)
    report = await _report(database, "day")
    rows = {row["key"]: row for row in report["rows"]}  # type: ignore[attr-defined]
    assert list(rows) == ["2025-03-03", "2025-03-04"]  # 00:30 Paris on the 4th is still the 3rd in UTC
    first, second = rows["2025-03-03"], rows["2025-03-04"]
    classes = ("offered", "answered", "abandoned", "voicemail", "closed", "other")
    assert [first[key] for key in classes] == [6, 2, 1, 1, 1, 1]
    assert (first["service_level_pct"], first["abandon_rate_pct"], first["asa_s"], first["aht_s"]) == (
        33.3, 33.3, 20.0, 150.0)
    assert [second[key] for key in ("offered", "answered", "abandoned")] == [2, 1, 1]
    # the abandoned call of the 4th never reached a queue: it does not count against the service level
    assert (second["service_level_pct"], second["abandon_rate_pct"], second["asa_s"], second["aht_s"]) == (
        100.0, 0.0, 5.0, 300.0)
    total = report["total"]
    assert (total["offered"], total["answered"], total["service_level_pct"], total["asa_s"], total["aht_s"]) == (  # type: ignore[index]
        8, 3, 50.0, 15.0, 200.0)


async def test_grouped_by_hour_number_and_queue(database: Database) -> None:
    await _insert(database)
    hours = await _report(database, "hour")
    assert [(row["key"], row["offered"]) for row in hours["rows"]] == [  # type: ignore[attr-defined]
        ("2025-03-03 09:00", 3), ("2025-03-03 10:00", 2), ("2025-03-03 20:00", 1), ("2025-03-04 00:00", 1),
        ("2025-03-04 09:00", 1)]
    numbers = await _report(database, "number")
    assert [(row["key"], row["offered"]) for row in numbers["rows"]] == [  # type: ignore[attr-defined]
        ("+3315551000", 1), ("5551000", 6), ("5552000", 1)]
    queues = {row["key"]: row for row in (await _report(database, "queue"))["rows"]}  # type: ignore[attr-defined]
    assert list(queues) == ["", "billing", "support"]
    assert (queues["billing"]["abandoned"], queues["billing"]["service_level_pct"],
            queues["billing"]["abandon_rate_pct"]) == (1, 0.0, 100.0)
    assert (queues["support"]["answered"], queues["support"]["service_level_pct"]) == (3, 66.7)
    assert queues[""]["service_level_pct"] is None and queues[""]["asa_s"] is None


async def test_the_service_level_uses_each_queues_own_target(database: Database) -> None:
    await _insert(database)
    queues = {row["key"]: row for row in (await _report(database, "queue", {"support": 40}))["rows"]}  # type: ignore[attr-defined]
    assert queues["support"]["service_level_pct"] == 100.0  # the 30 s wait is within 40 s


async def test_csv_has_the_rows_a_total_and_no_formula_cells(database: Database) -> None:
    await _insert(database)
    text = report_csv(await _report(database, "number"))
    lines = list(csv.reader(io.StringIO(text)))
    assert lines[0] == ["number", "offered", "answered", "abandoned", "voicemail", "closed", "other",
                        "service_level_pct", "abandon_rate_pct", "asa_s", "aht_s"]
    assert lines[1][0] == "'+3315551000"  # a spreadsheet must not run it as a formula
    assert lines[2][:3] == ["5551000", "6", "3"]
    assert lines[-1][:2] == ["total", "8"]
    assert lines[1][7] == ""  # no service level for calls that never queued: empty, not "None"


def test_query_defaults_to_today_and_refuses_bad_input_all_at_once() -> None:
    today = date(2025, 3, 10)
    assert parse_query({}, today) == ReportQuery(today, today, "day")
    with pytest.raises(ReportInvalid) as caught:
        parse_query({"from": "yesterday", "to": "2025-13-01", "group": "week"}, today)
    assert len(caught.value.errors) == 3 and caught.value.code == "reports.invalid"
    with pytest.raises(ReportInvalid, match="before"):
        parse_query({"from": "2025-03-05", "to": "2025-03-04"}, today)
    with pytest.raises(ReportInvalid, match="366"):
        parse_query({"from": "2024-01-01", "to": "2025-03-04"}, today)


def _queued(hour: int, talk: float | None, day: int = 3) -> CallFacts:
    started = paris(day, hour, 5)
    answered = talk is not None
    return CallFacts(started, "5551000", "support", "answered" if answered else "abandoned",
                     started if answered else None, 5.0, talk, OPEN)


def test_erlang_staffing_per_hour_of_day() -> None:
    """40 calls of 180 s in an hour: 2 Erlangs; 80 % within 20 s needs 4 agents (3 give 60 %)."""
    calls = [_queued(10, 180.0) for _ in range(40)] + [_queued(11, None), _queued(11, None)]
    settings = SupervisionSettings(shrinkage=0.2)
    plan = staffing(calls, 1, settings, PARIS)
    ten, eleven = plan["hours"]
    assert (ten["hour"], ten["calls_per_hour"], ten["aht_s"], ten["agents"], ten["scheduled_agents"]) == (
        10, 40.0, 180.0, 4, 5)
    assert 80.0 <= ten["expected_service_level_pct"] < 90.0
    assert (eleven["calls_per_hour"], eleven["aht_s"], eleven["agents"]) == (2.0, 180.0, 1)  # borrows the AHT
    assert (plan["days"], plan["service_level_pct"], plan["answer_within_s"]) == (1, 80.0, 20)


def test_staffing_averages_over_the_days_of_the_range_and_needs_a_handle_time() -> None:
    calls = [_queued(10, 180.0, day) for day in (3, 4) for _ in range(20)]
    assert staffing(calls, 2, SETTINGS, PARIS)["hours"][0]["calls_per_hour"] == 20.0
    assert staffing(calls, 4, SETTINGS, PARIS)["hours"][0]["calls_per_hour"] == 10.0
    unanswered = staffing([_queued(9, None)], 1, SETTINGS, PARIS)["hours"]
    assert unanswered == [{"hour": 9, "calls_per_hour": 1.0, "aht_s": None, "agents": None,
                           "scheduled_agents": None, "expected_service_level_pct": None}]


async def test_report_staffing_comes_from_the_queued_calls_of_the_range(database: Database) -> None:
    await _insert(database)
    plan = (await _report(database, "day"))["staffing"]
    hours = {row["hour"]: row for row in plan["hours"]}  # type: ignore[index]
    assert sorted(hours) == [0, 9]  # queued calls only: 00:30 on the 4th, three at 09:xx on the 3rd
    assert (hours[9]["calls_per_hour"], hours[9]["aht_s"]) == (1.5, 150.0)
    assert (hours[0]["calls_per_hour"], hours[0]["aht_s"], hours[0]["agents"]) == (0.5, 300.0, 1)
