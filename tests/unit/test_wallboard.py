"""What the wallboard shows (SQLite and PostgreSQL): a node's snapshot from a test ACD, today's figures from the
calls table in the desk's time zone, thresholds turning figures red, and the merge of several nodes."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from cti.call_records import open_call
from cti.db import Database
from cti.db.models import CallRecord
from cti.settings import SupervisionSettings
from cti.supervision.today_figures import TodayFigures
from cti.supervision.wallboard_feed import alerts, merge, node_snapshot
from tests.support.acd import Desk, make_desk, queue

PARIS = ZoneInfo("Europe/Paris")
DEFAULTS = SupervisionSettings()


async def _busy_desk(database: Database) -> Desk:
    """alice rings for a first caller, a second waits 30 s, bob is at lunch, carol logged out."""
    desk = await make_desk(database, queues=(queue("support", label="Technical support"), queue("billing")))
    await desk.acd.login("alice")
    await desk.acd.login("bob")
    await desk.acd.pause("bob", "lunch")
    await desk.join()
    await desk.route()
    await desk.join()
    desk.clock.advance(30)
    return desk


async def test_a_nodes_snapshot_has_its_callers_and_the_agents(database: Database) -> None:
    desk = await _busy_desk(database)
    snapshot = node_snapshot(desk.acd, None, 1234.5)
    assert (snapshot["node"], snapshot["at"], snapshot["today"]) == ("node-test", 1234.5, None)
    support = snapshot["queues"]["support"]
    assert (support["label"], support["waiting"], support["in_progress"], support["longest_wait_s"]) == (
        "Technical support", 1, 1, 30.0)
    assert snapshot["queues"]["billing"] == {"label": "Billing", "waiting": 0, "longest_wait_s": 0.0,
                                             "estimated_wait_s": snapshot["queues"]["billing"]["estimated_wait_s"],
                                             "in_progress": 0}
    states = {agent["id"]: (agent["state"], agent["reason"]) for agent in snapshot["agents"]}
    assert states == {"alice": ("ringing", None), "bob": ("paused", "lunch"), "carol": ("logged_out", None)}


async def test_the_view_counts_agents_by_state_with_pause_reasons_and_occupancy(database: Database) -> None:
    desk = await _busy_desk(database)
    view = merge([node_snapshot(desk.acd, None, 1.0)], DEFAULTS)
    agents = view["agents"]
    assert agents["by_state"] == {"logged_out": 1, "available": 0, "ringing": 1, "on_call": 0, "wrap_up": 0,
                                  "paused": 1}
    assert agents["pause_reasons"] == {"lunch": 1}
    assert agents["occupancy_pct"] == 100.0  # alice, the one agent taking calls, is busy
    assert [agent["id"] for agent in agents["list"]] == ["alice", "bob", "carol"]
    assert view["totals"]["alerts"] == ["occupancy_pct"]  # past the default 90 %
    assert [q["name"] for q in view["queues"]] == ["billing", "support"]


async def test_thresholds_turn_waiting_figures_red(database: Database) -> None:
    desk = await _busy_desk(database)
    snapshot = node_snapshot(desk.acd, None, 1.0)
    relaxed = merge([snapshot], DEFAULTS)
    assert {q["name"]: q["alerts"] for q in relaxed["queues"]} == {"billing": [], "support": []}
    strict = merge([snapshot], SupervisionSettings(longest_wait_max_s=20, waiting_max=1, occupancy_max=100))
    support = next(q for q in strict["queues"] if q["name"] == "support")
    assert support["alerts"] == ["longest_wait_s"]  # 30 s > 20 s; 1 waiting is not more than 1
    await desk.join()
    crowded = merge([node_snapshot(desk.acd, None, 2.0)], SupervisionSettings(longest_wait_max_s=20, waiting_max=1))
    assert sorted(next(q for q in crowded["queues"] if q["name"] == "support")["alerts"]) == [
        "longest_wait_s", "waiting"]
    assert {"longest_wait_s", "waiting"} <= set(crowded["totals"]["alerts"])


def test_alerts_compare_each_figure_in_its_direction() -> None:
    settings = SupervisionSettings(service_level_min=80, abandon_rate_max=5, asa_max_s=30)
    assert alerts({"service_level_pct": 79.9, "abandon_rate_pct": 5.0, "asa_s": 30.1}, settings) == [
        "service_level_pct", "asa_s"]
    assert alerts({"service_level_pct": 80.0, "abandon_rate_pct": 5.1, "asa_s": None}, settings) == [
        "abandon_rate_pct"]
    assert alerts({"service_level_pct": None, "occupancy_pct": None}, settings) == []  # unknown is not bad


def _paris(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2025, 3, day, hour, minute, tzinfo=PARIS)


async def _row(db: Database, uid: str, started: datetime, queue_name: str | None, outcome: str,
               wait: float | None = None, talk: float | None = None) -> None:
    answered = started + timedelta(seconds=wait or 0) if outcome == "answered" else None
    await open_call(db, CallRecord(uniqueid=uid, channel="PJSIP/t", started_at=started, queue=queue_name,
                                   outcome=outcome, answered_at=answered, wait_s=wait, talk_s=talk))


async def test_todays_figures_come_from_the_calls_of_the_desks_day(database: Database) -> None:
    await _row(database, "t.1", _paris(4, 0, 30), "support", "answered", 10.0, 100.0)  # 23:30 UTC on the 3rd
    await _row(database, "t.2", _paris(4, 9), "support", "answered", 40.0, 300.0)
    await _row(database, "t.3", _paris(4, 9, 30), "support", "abandoned", 70.0)
    await _row(database, "t.4", _paris(4, 9, 40), "billing", "answered", 5.0, 60.0)
    await _row(database, "t.5", _paris(4, 9, 50), None, "abandoned")  # hung up in the IVR: not a queue's
    await _row(database, "t.6", _paris(3, 23, 50), "support", "abandoned", 3.0)  # yesterday in Paris
    today = await TodayFigures(database, DEFAULTS).read({"support": 20, "billing": 20}, _paris(4, 10))
    assert today["day"] == "2025-03-04"
    support = today["queues"]["support"]
    assert (support["offered"], support["answered"], support["abandoned"]) == (3, 2, 1)
    assert (support["service_level_pct"], support["abandon_rate_pct"], support["asa_s"], support["aht_s"]) == (
        33.3, 33.3, 25.0, 200.0)
    assert today["queues"]["billing"]["service_level_pct"] == 100.0
    assert (today["total"]["offered"], today["total"]["service_level_pct"]) == (4, 50.0)


async def test_todays_figures_join_the_live_queues_and_alert(database: Database) -> None:
    desk = await _busy_desk(database)
    await _row(database, "t.1", _paris(4, 9), "support", "answered", 40.0, 300.0)
    await _row(database, "t.2", _paris(4, 9, 30), "support", "abandoned", 70.0)
    today = await TodayFigures(database, DEFAULTS).read({"support": 20}, _paris(4, 10))
    view = merge([node_snapshot(desk.acd, today, 1.0)], SupervisionSettings(asa_max_s=60, occupancy_max=100))
    support = next(q for q in view["queues"] if q["name"] == "support")
    assert (support["waiting"], support["answered"], support["service_level_pct"], support["asa_s"]) == (
        1, 1, 0.0, 40.0)
    assert support["alerts"] == ["service_level_pct", "abandon_rate_pct"]
    billing = next(q for q in view["queues"] if q["name"] == "billing")
    assert (billing["offered"], billing["service_level_pct"], billing["alerts"]) == (0, None, [])
    assert view["day"] == "2025-03-04" and view["totals"]["offered"] == 2


def _snapshot(node: str, at: float, waiting: int, longest: float, ewt: int | None, agents: list[dict[str, Any]],
              today: dict[str, Any] | None = None) -> dict[str, Any]:
    live = {"label": "Support", "waiting": waiting, "longest_wait_s": longest, "estimated_wait_s": ewt,
            "in_progress": 1}
    return {"node": node, "at": at, "queues": {"support": live}, "agents": agents, "today": today}


def test_several_nodes_add_their_callers_and_the_freshest_tells_the_rest() -> None:
    agent = {"id": "alice", "name": "Alice", "team": "", "reason": None, "since_s": 3}
    older_today = {"day": "2025-03-04", "at": 50.0, "queues": {}, "total": {"offered": 7}}
    newer_today = {**older_today, "at": 90.0, "total": {"offered": 9}}
    view = merge([
        _snapshot("b", 101.0, 1, 50.0, None, [{**agent, "state": "on_call"}]),
        _snapshot("a", 100.0, 2, 30.0, 60, [{**agent, "state": "available"}], newer_today),
        _snapshot("c", 99.0, 0, 0.0, 20, [{**agent, "state": "paused"}], older_today),
    ], DEFAULTS)
    [support] = view["queues"]
    assert (support["waiting"], support["in_progress"], support["longest_wait_s"], support["estimated_wait_s"]) == (
        3, 3, 50.0, 60)
    assert view["nodes"] == ["c", "a", "b"] and view["at"] == 101.0
    assert [row["state"] for row in view["agents"]["list"]] == ["on_call"]  # node b's, the freshest
    assert view["totals"]["offered"] == 9 and view["totals"]["waiting"] == 3


def test_no_node_heard_yet_is_an_empty_view() -> None:
    view = merge([], DEFAULTS)
    assert (view["queues"], view["nodes"], view["day"], view["totals"]["waiting"]) == ([], [], None, 0)
    assert view["agents"]["occupancy_pct"] is None and view["thresholds"]["service_level_min"] == 80.0
