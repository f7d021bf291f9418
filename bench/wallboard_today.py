"""The wallboard's "today" figures after a call event: the old full read of the day against the incremental one.

    python bench/wallboard_today.py [--rows 1000,10000,50000] [--repeats 15] [--url postgresql+asyncpg://...]

For each size N: a migrated database (a new SQLite file unless ``--url`` names one: its calls are deleted) with N
calls of one day (20:00 in Paris), 81 % of them queued, spread evenly from midnight, with an IVR path of about
100 characters; a few are still open. Then, ``--repeats`` times: one call ends (its row is written), the
simulated clock moves one second, and today's figures are read twice:

* **old**: the read the wallboard did before (``session.execute`` of every row of the day, a list of them, the
  queued ones filtered into another, ``figures_by``), re-implemented here as it was;
* **incremental**: ``TodayFigures.read`` (the calls that ended in the last second, then the open ones and those
  that ended within ``SETTLE_MARGIN_S``), on an instance that made its full count before the repeats.

Also timed: the incremental one's full recount (every ``FULL_RECOUNT_S``, counted by the database, then the
live rows), on a fresh instance.
Times are medians of the repeats (``time.perf_counter``); memory is the ``tracemalloc`` peak of one more read
of each kind, traced apart from the timed ones. Both reads are checked to give the same figures.
"""

from __future__ import annotations

import statistics
import sys
import tracemalloc
from collections.abc import Awaitable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, insert, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

from bench.common import run_sized_bench, timed
from cti.db import Database
from cti.db.models import CallRecord
from cti.settings import SupervisionSettings
from cti.supervision.reports import FACT_COLUMNS, CallFacts, Figures, day_bounds, figures_by, targets
from cti.supervision.today_figures import TodayFigures

SETTINGS = SupervisionSettings(timezone="Europe/Paris")
ZONE = ZoneInfo(SETTINGS.timezone)
LEVELS = {"support": 20, "billing": 30, "sales": 20}
NOW = datetime(2026, 3, 10, 20, 0, tzinfo=ZONE)
PATH = "screen:default > hours:open > welcome > language:en > main:1 > technical > queue:support > agent:a1"
OPEN_ROWS = 10


async def old_read(db: Database, now: datetime) -> dict[str, Any]:
    """The wallboard's read before TodayFigures (load_calls, then the figures of the queued calls)."""
    day = now.astimezone(ZONE).date()
    start, end = day_bounds(day, day, ZONE)
    query = select(*FACT_COLUMNS).where(CallRecord.started_at >= start, CallRecord.started_at < end)
    async with db.session() as session:
        rows = await session.execute(query.order_by(CallRecord.started_at, CallRecord.id))
        loaded = [CallFacts(*row) for row in rows]
    calls = [call for call in loaded if call.queue is not None]
    per_queue = figures_by(calls, lambda call: call.queue or "", targets(LEVELS, SETTINGS.answer_within_s))
    total = Figures()
    for figures in per_queue.values():
        total.merge(figures)
    return {"day": day.isoformat(), "at": now.timestamp(),
            "queues": {name: figures.as_dict() for name, figures in per_queue.items()}, "total": total.as_dict()}


def row(index: int, started: datetime, ended: datetime | None) -> dict[str, Any]:
    queue = (None, "support", "support", "billing", "sales", "support", "billing")[index % 7] if index % 20 else None
    answered = index % 5 != 0
    wait, talk = float(index % 90), float(60 + index % 400)
    return {"uniqueid": f"b.{index}", "channel": "PJSIP/trunk-0001", "called_number": "5551000",
            "started_at": started, "ended_at": ended, "queue": queue,
            "outcome": ("answered" if answered else "abandoned") if ended else "in_progress",
            "answered_at": started + timedelta(seconds=wait) if answered and ended else None,
            "wait_s": wait if queue else None, "talk_s": talk if answered and ended else None, "path": PATH}


async def fill(db: Database, count: int) -> None:
    """``count`` calls from midnight to a minute before NOW, the last OPEN_ROWS still open."""
    start, _ = day_bounds(NOW.date(), NOW.date(), ZONE)
    step = (NOW - timedelta(minutes=1) - start) / count
    async with db.session() as session:
        await session.execute(delete(CallRecord))
    for first in range(0, count, 5000):
        rows = []
        for index in range(first, min(count, first + 5000)):
            started = start + step * index
            ended = None if index >= count - OPEN_ROWS else min(started + timedelta(seconds=200), NOW)
            rows.append(row(index, started, ended))
        async with db.session() as session:
            await session.execute(insert(CallRecord), rows)


async def call_ends(db: Database, index: int, now: datetime) -> None:
    async with db.session() as session:
        await session.execute(insert(CallRecord), [row(index, now - timedelta(seconds=90), now)])


async def peak_kib(work: Awaitable[Any]) -> float:
    tracemalloc.start()
    try:
        await work
        return tracemalloc.get_traced_memory()[1] / 1024
    finally:
        tracemalloc.stop()


async def measure(db: Database, count: int, repeats: int) -> dict[str, Any]:
    await fill(db, count)
    kept = TodayFigures(db, SETTINGS)
    await kept.read(LEVELS, NOW)
    await old_read(db, NOW)  # warm both paths (statement caches, pages)
    old, incremental, now = [], [], NOW
    for repeat in range(repeats + 1):
        now += timedelta(seconds=1)
        await call_ends(db, count + repeat, now)
        if repeat:  # the first round is a warm-up
            old.append((await timed(old_read(db, now)))[1])
            incremental.append((await timed(kept.read(LEVELS, now)))[1])
    same = await kept.read(LEVELS, now) == await old_read(db, now)
    recount = [(await timed(TodayFigures(db, SETTINGS).read(LEVELS, now)))[1] for _ in range(3)]
    return {"rows": count, "repeats": repeats, "same_figures": same,
            "old_ms": round(1000 * statistics.median(old), 2),
            "incremental_ms": round(1000 * statistics.median(incremental), 2),
            "ratio": round(statistics.median(old) / statistics.median(incremental), 1),
            "full_recount_ms": round(1000 * statistics.median(recount), 2),
            "old_peak_kib": round(await peak_kib(old_read(db, now))),
            "incremental_peak_kib": round(await peak_kib(kept.read(LEVELS, now))),
            "full_recount_peak_kib": round(await peak_kib(TodayFigures(db, SETTINGS).read(LEVELS, now)))}


def table(results: list[dict[str, Any]]) -> str:
    lines = ["| rows today | old read ms | incremental ms | ratio | full recount ms | old peak KiB "
             "| incremental peak KiB | recount peak KiB |", "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        lines.append(f"| {r['rows']:,} | {r['old_ms']} | {r['incremental_ms']} | {r['ratio']} | {r['full_recount_ms']} "
                     f"| {r['old_peak_kib']:,} | {r['incremental_peak_kib']:,} | {r['full_recount_peak_kib']:,} |")
    return "\n".join(lines)


if __name__ == "__main__":
    run_sized_bench(__doc__ or "", rows="1000,10000,50000", repeats=15, measure=measure, table=table,
                    check="same_figures",
                    url_help="an empty migrated database (default: a new SQLite file); its calls are deleted")
