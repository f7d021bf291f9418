"""The database counts the wallboard's day with the same rules as the reports' Python (SQLite and PostgreSQL):
``call_class_sql`` classes every row as ``call_class`` does, paths built to trip a substring test included, and
``count_by_queue`` gives the Figures ``figures_by`` folds from the same rows; the full recount brings no row of
the day into the server."""

from __future__ import annotations

import random
from collections.abc import AsyncGenerator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

import cti.supervision.today_figures as today_module
from cti.call_records import PATH_SEPARATOR
from cti.db import Database
from cti.db.models import CallRecord
from cti.settings import SupervisionSettings
from cti.supervision.reports import (
    CallFacts,
    call_class,
    call_class_sql,
    count_by_queue,
    figures_by,
    load_calls,
    started_in,
    stream_calls,
    targets,
)
from cti.supervision.today_figures import SETTLE_MARGIN_S, TodayFigures

T0 = datetime(2025, 3, 14, 9, 0, tzinfo=UTC)
FRAGMENTS = (":", PATH_SEPARATOR, " >", "> ", ">", " ", "closed", "holiday", "override_closed", "CLOSED",
             "Holiday", "override", "_closed", "%closed", "open", "hours", "a", "queue:support", "voicemail:closed")
OUTCOMES = ("answered", "abandoned", "voicemail", "voicemail_empty", "to_voicemail", "transferred",
            "in_progress", "ANSWERED", "Voicemail")
TRICKY_PATHS = (
    "hours:closed", ":closed", "closed", "x:closed >", "x:closed > ", "x:closed >  > y", "a:b:closed > c",
    "hours:open > main:1 > queue:support", "hours:override_closed", "hours:override_closed > v", "x:override",
    "hours:CLOSED", "x:_closed", "x:%closed", "hours:holiday >", "x:closedx > y", "x:closed>y", "", " > ",
    "x:open > y:holiday", "welcome > main:9 > voicemail:request", "x:closed > > y", "x: closed",
    "x:CLOSED > y", "x:Holiday > y", "x:overrideXclosed > y",  # what SQLite's LIKE would take for a closed step
)


def random_path(rng: random.Random) -> str:
    return "".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(0, 8)))


async def insert(db: Database, rows: list[dict[str, Any]]) -> None:
    async with db.session() as session:
        for index, values in enumerate(rows):
            session.add(CallRecord(uniqueid=f"u{index}", channel="PJSIP/t", **values))


async def test_the_database_classes_every_call_as_the_reports_do(database: Database) -> None:
    rng = random.Random(8)
    paths = [*TRICKY_PATHS, *(random_path(rng) for _ in range(600))]
    rows = [{"started_at": T0 + timedelta(seconds=index), "path": path, "outcome": rng.choice(OUTCOMES),
             "answered_at": T0 if rng.random() < 0.3 else None} for index, path in enumerate(paths)]
    await insert(database, rows)
    async with database.session() as session:
        in_sql = dict((await session.execute(select(CallRecord.uniqueid, call_class_sql()))).all())
    calls = {f"u{index}": call for index, call in enumerate(await load_calls(database, T0, T0 + timedelta(hours=1)))}
    in_python = {uid: call_class(call) for uid, call in calls.items()}
    assert len(in_python) == len(paths)
    differ = {calls[uid].path: (in_python[uid], in_sql[uid]) for uid in in_python if in_python[uid] != in_sql[uid]}
    assert differ == {}
    assert {"closed", "answered", "voicemail", "abandoned", "other"} <= set(in_sql.values())
    assert in_sql["u0"] == "closed" and in_sql[f"u{TRICKY_PATHS.index('x:closed >')}"] != "closed"


async def test_the_database_counts_each_queue_as_the_reports_fold_it(database: Database) -> None:
    """Waits and talks in half seconds, so sums are exact in any order; a queue without a target, calls in no
    queue, waits on the target exactly, missing waits and talks."""
    rng = random.Random(3)
    rows = []
    for index in range(800):
        queue = rng.choice(("support", "billing", "sales", None))
        outcome = rng.choice(("answered", "answered", "abandoned", "voicemail", "transferred"))
        rows.append({"started_at": T0 + timedelta(seconds=index), "queue": queue, "outcome": outcome,
                     "path": rng.choice(("hours:open > queue", "hours:closed > voicemail:closed")),
                     "answered_at": T0 if outcome == "answered" and rng.random() < 0.9 else None,
                     "wait_s": rng.choice((None, 20.0, 60.0, rng.randint(0, 240) / 2)),
                     "talk_s": rng.choice((None, rng.randint(10, 900) / 2))})
    await insert(database, rows)
    levels, default_s = {"support": 20, "billing": 60}, 30.0
    window = started_in(T0, T0 + timedelta(hours=1))
    counted = await count_by_queue(database, levels, default_s, window)
    folded = figures_by(await load_calls(database, T0, T0 + timedelta(hours=1)), lambda call: call.queue or "",
                        targets(levels, default_s))
    assert {name: figures.as_dict() for name, figures in counted.items()} == \
        {name: figures.as_dict() for name, figures in folded.items()}
    assert counted == folded  # every count and sum, not only the rounded figures
    assert set(counted) == {"support", "billing", "sales", ""}
    no_target = await count_by_queue(database, {}, default_s, window, CallRecord.queue == "support")
    assert no_target["support"].in_target == figures_by(
        [call for call in await load_calls(database, T0, T0 + timedelta(hours=1)) if call.queue == "support"],
        lambda _: "support", lambda _: default_s)["support"].in_target


async def test_the_full_recount_brings_no_row_of_the_day_into_the_server(
        database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """500 calls of the day settled, 2 still open: a first read (a full recount) streams only the 2 open ones."""
    now = T0 + timedelta(hours=2)
    rows = [{"started_at": T0 + timedelta(seconds=index), "ended_at": T0 + timedelta(seconds=index + 30),
             "queue": "support", "outcome": "answered", "answered_at": T0, "wait_s": 5.0, "talk_s": 20.0,
             "path": "hours:open > queue"} for index in range(500)]
    rows += [{"started_at": now - timedelta(seconds=SETTLE_MARGIN_S / 2), "queue": "support",
              "outcome": "in_progress", "path": "hours:open"} for _ in range(2)]
    await insert(database, rows)
    streamed = 0
    real = stream_calls

    async def counting(db: Database, *where: Any, ordered: bool = False) -> AsyncGenerator[CallFacts, None]:
        nonlocal streamed
        async for call in real(db, *where, ordered=ordered):
            streamed += 1
            yield call

    monkeypatch.setattr(today_module, "stream_calls", counting)
    read = await TodayFigures(database, SupervisionSettings(timezone="UTC")).read({"support": 20}, now)
    assert read["queues"]["support"]["answered"] == 500 and read["total"]["offered"] == 502
    assert streamed == 2
