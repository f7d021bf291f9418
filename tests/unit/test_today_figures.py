"""Today's figures kept up to date incrementally (SQLite and PostgreSQL): over simulated hours of calls (open,
ending, corrected after ending, written late, from yesterday, outside any queue, across the end of a 25-hour
DST day) every read equals a full count of the day's rows, except a late row, which shows at the next full
recount; a change of targets or a failed read leaves nothing counted twice."""

from __future__ import annotations

import random
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update

import cti.supervision.today_figures as today_module
from cti.db import Database, DatabaseUnavailable
from cti.db.models import CallRecord
from cti.settings import SupervisionSettings
from cti.supervision.reports import CallFacts, Figures, day_bounds, figures_by, load_calls, stream_calls, targets
from cti.supervision.today_figures import FULL_RECOUNT_S, SETTLE_MARGIN_S, TodayFigures

PARIS = ZoneInfo("Europe/Paris")
SETTINGS = SupervisionSettings(timezone="Europe/Paris")
LEVELS = {"support": 20, "billing": 60}  # "sales" has none: SETTINGS.answer_within_s applies
OPEN_PATH = "hours:open > main:1 > queue"
CLOSED_PATH = "hours:closed > closed > voicemail:closed"
MAX_READ_GAP_S = 30.0
MARGIN = timedelta(seconds=SETTLE_MARGIN_S)


async def full_count(db: Database, levels: dict[str, int], now: datetime) -> dict[str, Any]:
    """The reference: every row of the day read at once, as the wallboard did before (total counted apart)."""
    day = now.astimezone(PARIS).date()
    calls = [call for call in await load_calls(db, *day_bounds(day, day, PARIS)) if call.queue is not None]
    target_of = targets(levels, SETTINGS.answer_within_s)
    per_queue = figures_by(calls, lambda call: call.queue or "", target_of)
    total = figures_by(calls, lambda _: "all", target_of).get("all")
    return {"day": day.isoformat(), "queues": {name: figures.as_dict() for name, figures in per_queue.items()},
            "total": (total or Figures()).as_dict()}


def shown(read: dict[str, Any]) -> dict[str, Any]:
    return {key: read[key] for key in ("day", "queues", "total")}


def paris(day: int, hour: int, minute: int = 0, month: int = 10) -> datetime:
    return datetime(2025, month, day, hour, minute, tzinfo=PARIS)


# --- a simulated desk ---------------------------------------------------------------------------------------


@dataclass
class Call:
    uid: str
    started: datetime
    queue: str | None
    outcome: str  # the final one
    wait: float | None
    talk: float | None
    path: str
    ended: datetime | None  # None: still open when the simulation ends
    fix: str | None = None  # "talk" or "answer": written up to 60 s after the end (the ACD, note_answer)
    late_by: float | None = None  # written whole, this long after it ended (after a database outage)


def random_call(rng: random.Random, uid: str, started: datetime) -> Call:
    """Waits and talks in half seconds, so sums are exact whatever order they are added in."""
    queue = rng.choice(("support", "support", "billing", "sales", None))
    wait, talk = rng.randint(0, 240) / 2, rng.randint(10, 900) / 2
    kind = rng.choices(("answered", "abandoned", "voicemail", "transferred", "closed"), (6, 2, 1, 1, 1))[0]
    path = CLOSED_PATH if kind == "closed" else OPEN_PATH
    outcome = "voicemail" if kind == "closed" else kind
    call = Call(uid, started, queue, outcome, wait if queue else None, talk if kind == "answered" else None, path,
                started + timedelta(seconds=wait + (talk if kind == "answered" else 0) + rng.randint(5, 30)))
    if rng.random() < 0.03:
        call.ended = None  # never closed (its node died; no sweeper here)
    elif kind == "answered" and rng.random() < 0.3:
        call.fix = rng.choice(("talk", "answer"))
    elif rng.random() < 0.03:
        call.late_by = float(rng.randint(int(SETTLE_MARGIN_S) + 30, 900))
    return call


def _values(call: Call, final: bool) -> dict[str, Any]:
    """The columns a close writes; before the fix: no talk time yet, or the answer not noted yet."""
    answered = call.started + timedelta(seconds=call.wait or 0) if call.outcome == "answered" else None
    values = {"ended_at": call.ended, "outcome": call.outcome, "answered_at": answered, "wait_s": call.wait,
              "talk_s": call.talk, "path": call.path}
    if not final and call.fix == "talk":
        values["talk_s"] = None
    elif not final and call.fix == "answer":
        values.update(outcome="abandoned", answered_at=None)
    return values


async def _insert(db: Database, call: Call, values: dict[str, Any]) -> None:
    async with db.session() as session:
        session.add(CallRecord(uniqueid=call.uid, channel="PJSIP/t", started_at=call.started, queue=call.queue,
                               **values))


async def _update(db: Database, call: Call, values: dict[str, Any]) -> None:
    async with db.session() as session:
        await session.execute(update(CallRecord).where(CallRecord.uniqueid == call.uid).values(**values))


def events(calls: list[Call], rng: random.Random) -> list[tuple[datetime, int, str, Call]]:
    """What is written when: the row opened, closed (a second or two after the end), fixed, or written late."""
    found: list[tuple[datetime, int, str, Call]] = []
    for index, call in enumerate(calls):
        if call.late_by is not None and call.ended is not None:
            found.append((call.ended + timedelta(seconds=call.late_by), index, "late", call))
            continue
        found.append((call.started, index, "open", call))
        if call.ended is not None:
            found.append((call.ended + timedelta(seconds=rng.uniform(0, 2)), index, "close", call))
        if call.fix is not None and call.ended is not None:
            found.append((call.ended + timedelta(seconds=rng.uniform(5, 60)), index, "fix", call))
    return sorted(found, key=lambda event: (event[0], event[1]))


async def apply(db: Database, kind: str, call: Call) -> None:
    if kind == "open":
        await _insert(db, call, {"outcome": "in_progress", "path": "hours:open"})
    elif kind == "late":
        await _insert(db, call, _values(call, final=True))
    else:
        await _update(db, call, _values(call, final=kind == "fix" or call.fix is None))


# --- the tests ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2])
async def test_every_read_equals_a_full_count_but_for_late_rows_until_the_next_recount(
        database: Database, seed: int) -> None:
    """From 21:50 on Sunday 26 October 2025 (25 hours in Paris) to 00:40 on the 27th, a call every ~15 s; the
    reads from 22:50."""
    rng = random.Random(seed)
    first_read, last_read = paris(26, 22, 50), paris(27, 0, 40)
    calls: list[Call] = []
    at = paris(26, 21, 50)
    while at < last_read:
        calls.append(random_call(rng, f"c{len(calls)}", at))
        at += timedelta(seconds=rng.uniform(1, 30))
    pending = events(calls, rng)
    figures = TodayFigures(database, SETTINGS)
    now, exact, late_shown_later = first_read, 0, 0
    days = set()
    while now <= last_read:
        while pending and pending[0][0] <= now:
            _, _, kind, call = pending.pop(0)
            await apply(database, kind, call)
        read, expected = shown(await figures.read(LEVELS, now)), await full_count(database, LEVELS, now)
        days.add(read["day"])
        if read == expected:
            exact += 1
        else:  # only rows written late may be missing, and not longer than until the next full recount
            missing = expected["total"]["offered"] - read["total"]["offered"]
            assert 0 < missing <= len(recently_late(calls, now)), (now, read, expected)
            late_shown_later += 1
        now += timedelta(seconds=rng.uniform(1, MAX_READ_GAP_S))
    assert days == {"2025-10-26", "2025-10-27"}
    assert exact > 200 and expected["total"]["offered"] > 50  # the comparison had something to compare
    assert late_shown_later > 0  # and late rows did come (a full count at every read would show them at once)


def recently_late(calls: list[Call], now: datetime) -> list[Call]:
    """Today's queued calls written late, at most a full recount period (and a read) before ``now``."""
    day = now.astimezone(PARIS).date()
    return [call for call in calls if call.late_by is not None and call.ended is not None and call.queue
            and call.started.astimezone(PARIS).date() == day
            and 0 <= (now - call.ended).total_seconds() - call.late_by < FULL_RECOUNT_S + MAX_READ_GAP_S]


async def test_a_late_row_shows_at_the_next_full_recount_not_before(database: Database) -> None:
    """Proof the reads in between are incremental: a full count would see the late row at once."""
    figures = TodayFigures(database, SETTINGS)
    now = paris(14, 10, month=3)
    on_time = Call("a", now - timedelta(minutes=30), "support", "answered", 10.0, 60.0, OPEN_PATH,
                   now - timedelta(minutes=28))
    await _insert(database, on_time, _values(on_time, final=True))
    assert (await figures.read(LEVELS, now))["total"]["offered"] == 1
    late = Call("b", now - timedelta(minutes=20), "support", "abandoned", 50.0, None, OPEN_PATH,
                now - timedelta(minutes=19))
    await _insert(database, late, _values(late, final=True))  # written now, ended 19 minutes ago
    soon = now + timedelta(seconds=10)
    assert (await figures.read(LEVELS, soon))["total"]["offered"] == 1
    assert (await full_count(database, LEVELS, soon))["total"]["offered"] == 2
    after = now + timedelta(seconds=FULL_RECOUNT_S)
    assert shown(await figures.read(LEVELS, after)) == await full_count(database, LEVELS, after)
    assert (await figures.read(LEVELS, after))["queues"]["support"]["abandoned"] == 1


async def test_a_row_corrected_within_the_margin_is_counted_as_corrected(database: Database) -> None:
    figures = TodayFigures(database, SETTINGS)
    now = paris(14, 10, month=3)
    call = Call("a", now - timedelta(seconds=90), "billing", "answered", 30.0, 40.0, OPEN_PATH,
                now - timedelta(seconds=10), fix="answer")
    await _insert(database, call, _values(call, final=False))  # closed as abandoned: the answer not noted yet
    assert (await figures.read(LEVELS, now))["queues"]["billing"]["abandoned"] == 1
    await _update(database, call, _values(call, final=True))  # a restarting node notes the answer
    for seconds in (1, SETTLE_MARGIN_S, SETTLE_MARGIN_S + 60):  # live, then settled by the incremental step
        later = now + timedelta(seconds=seconds)
        billing = (await figures.read(LEVELS, later))["queues"]["billing"]
        assert (billing["answered"], billing["abandoned"], billing["service_level_pct"]) == (1, 0, 100.0)


async def test_other_targets_count_again_at_once(database: Database) -> None:
    figures = TodayFigures(database, SETTINGS)
    now = paris(14, 10, month=3)
    call = Call("a", now - timedelta(hours=1), "support", "answered", 30.0, 40.0, OPEN_PATH,
                now - timedelta(minutes=50))
    await _insert(database, call, _values(call, final=True))
    assert (await figures.read({"support": 20}, now))["queues"]["support"]["service_level_pct"] == 0.0
    later = now + timedelta(seconds=5)
    assert (await figures.read({"support": 30}, later))["queues"]["support"]["service_level_pct"] == 100.0


async def test_a_failed_read_counts_nothing_twice(database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """The database fails after some rows of the incremental step, then on the live rows after a full recount,
    then on the full recount itself: the next reads start again from what was counted, and stay exact."""
    figures = TodayFigures(database, SETTINGS)
    now = paris(14, 10, month=3)
    for index in range(6):
        call = Call(f"c{index}", now - timedelta(minutes=3 - index / 2), "support", "answered", 4.0, 20.0,
                    OPEN_PATH, now - timedelta(minutes=2.5 - index / 2))
        await _insert(database, call, _values(call, final=True))
    await figures.read(LEVELS, now)
    real = stream_calls

    async def failing(db: Database, *where: Any, ordered: bool = False) -> AsyncGenerator[CallFacts, None]:
        async for call in real(db, *where, ordered=ordered):
            yield call
        raise DatabaseUnavailable("connection lost")

    async def count_failing(*args: Any) -> dict[str, Figures]:
        raise DatabaseUnavailable("connection lost")

    monkeypatch.setattr(today_module, "stream_calls", failing)
    for seconds in (60, 60 + FULL_RECOUNT_S):  # the incremental step, then a full recount (after it, the live rows)
        with pytest.raises(DatabaseUnavailable):
            await figures.read(LEVELS, now + timedelta(seconds=seconds))
    monkeypatch.setattr(today_module, "stream_calls", real)
    for seconds in (61, 62 + FULL_RECOUNT_S, 200 + FULL_RECOUNT_S):
        at = now + timedelta(seconds=seconds)
        assert shown(await figures.read(LEVELS, at)) == await full_count(database, LEVELS, at)
    monkeypatch.setattr(today_module, "count_by_queue", count_failing)
    with pytest.raises(DatabaseUnavailable):  # the full recount itself
        await figures.read(LEVELS, now + timedelta(seconds=201 + 2 * FULL_RECOUNT_S))
    monkeypatch.undo()
    for seconds in (202 + 2 * FULL_RECOUNT_S, 300 + 2 * FULL_RECOUNT_S):
        at = now + timedelta(seconds=seconds)
        assert shown(await figures.read(LEVELS, at)) == await full_count(database, LEVELS, at)
    assert (await figures.read(LEVELS, at))["total"]["answered"] == 6
