"""A caller's history as the screen pop and the ACD read it, with and without the caller-number indexes.

    python bench/caller_history.py [--rows 1000,10000,100000] [--repeats 30] [--url postgresql+asyncpg://...]

For each size N: a migrated database (a new SQLite file unless ``--url`` names one: its calls, tickets and
recordings are deleted) holding N calls of N/2 callers over 60 days, N/4 tickets and N/8 voicemails, plus one
caller with a short history (3 calls, 2 open tickets, a voicemail). Timed, ``--repeats`` times each:

* **card**: ``CardBuilder.build`` for that caller and for a first-time caller (no row of theirs anywhere):
  directory lookup, open tickets, recent calls, voicemails, called service; what runs when an agent's phone rings;
* **preferred agent**: ``last_agent_for`` over 30 days for both, what the ACD asks for each queued caller.

First with the indexes of migration 0011, then after dropping them (the schema before it), in the same process
on the same rows; both must give the same card and agent. Medians (``time.perf_counter``), and the ratio.
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, delete, insert, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

from bench.common import run_sized_bench, timed
from cti.acd.records import last_agent_for
from cti.agents.cards import CardBuilder, RingingCall
from cti.contacts.directory import CallerDirectory
from cti.db import Database
from cti.db.models import CallRecord
from tickets.models import Recording, Ticket

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
CALLER = "+33655500001"
INDEXES = ("ix_calls_caller_number_started_at", "ix_tickets_caller_number_created_at",
           "ix_recordings_caller_number_created_at")
BATCH = 5000
CALLERS = {"known": CALLER, "first_time": "+33655599999"}  # a short history / none at all (every row read)


def _number(index: int) -> str:
    return f"+3361{index:07d}"


async def fill(db: Database, count: int) -> None:
    """``count`` calls of ``count // 2`` callers, a ticket for every 4th, a voicemail for every 8th; then the
    caller whose card is built."""
    async with db.session() as session:
        for model in (Recording, Ticket, CallRecord):
            await session.execute(delete(model))
    step = timedelta(days=60) / count
    for first in range(0, count, BATCH):
        calls, tickets, voicemails = [], [], []
        for index in range(first, min(count, first + BATCH)):
            at, number = NOW - step * (count - index), _number(index % max(1, count // 2))
            calls.append({"uniqueid": f"h.{index}", "channel": "PJSIP/trunk-0001", "caller_number": number,
                          "started_at": at, "ended_at": at + timedelta(minutes=3), "outcome": "answered",
                          "queue": "support", "agent_id": f"a{index % 40}", "answered_at": at})
            if index % 4 == 0:
                tickets.append({"subject": f"issue {index}", "caller_number": number, "status": "open",
                                "created_at": at, "updated_at": at})
            if index % 8 == 0:
                voicemails.append({"path": f"vm/h{index}.wav", "caller_number": number, "created_at": at})
        async with db.session() as session:
            await session.execute(insert(CallRecord), calls)
            await session.execute(insert(Ticket), tickets)
            await session.execute(insert(Recording), voicemails)
    async with db.session() as session:
        for day in (1, 5, 9):
            at = NOW - timedelta(days=day)
            session.add(CallRecord(uniqueid=f"mine.{day}", channel="PJSIP/t", caller_number=CALLER, started_at=at,
                                   answered_at=at, agent_id="alice", outcome="answered"))
            if day < 9:
                session.add(Ticket(subject=f"mine {day}", caller_number=CALLER, status="open", created_at=at))
        session.add(Recording(path="vm/mine.wav", caller_number=CALLER, created_at=NOW - timedelta(days=2)))
        session.add(CallRecord(uniqueid="ringing", channel="PJSIP/t", caller_number=CALLER, started_at=NOW))
    async with db.engine.begin() as conn:
        await conn.execute(text("ANALYZE"))


async def median_ms(work: Callable[[], Awaitable[Any]], repeats: int) -> tuple[float, Any]:
    result = await work()  # warm (statement cache, pages)
    times = [(await timed(work()))[1] for _ in range(repeats)]
    return round(1000 * statistics.median(times), 3), result


async def timings(db: Database, caller: str, repeats: int) -> dict[str, Any]:
    builder = CardBuilder(db, CallerDirectory(db, "FR"))
    ringing = RingingCall(call_id="ringing", agent_id="alice", caller=caller)
    card_ms, card = await median_ms(lambda: builder.build(ringing), repeats)
    agent_ms, agent = await median_ms(lambda: last_agent_for(db, caller, days=30, now=NOW), repeats)
    history = {key: card[key] for key in ("open_tickets", "recent_calls", "voicemails")}
    return {"card_ms": card_ms, "agent_ms": agent_ms, "history": history, "agent": agent}


def compared(indexed: dict[str, Any], bare: dict[str, Any]) -> dict[str, Any]:
    return {"card_indexed_ms": indexed["card_ms"], "card_without_ms": bare["card_ms"],
            "card_ratio": round(bare["card_ms"] / indexed["card_ms"], 1),
            "agent_indexed_ms": indexed["agent_ms"], "agent_without_ms": bare["agent_ms"],
            "agent_ratio": round(bare["agent_ms"] / indexed["agent_ms"], 1)}


async def measure(db: Database, count: int, repeats: int) -> dict[str, Any]:
    await fill(db, count)
    indexed = {kind: await timings(db, caller, repeats) for kind, caller in CALLERS.items()}
    indexes = [index for table in (CallRecord.__table__, Ticket.__table__, Recording.__table__)
               for index in cast(Table, table).indexes if index.name in INDEXES]
    async with db.engine.begin() as conn:
        for index in indexes:
            await conn.run_sync(index.drop)
    bare = {kind: await timings(db, caller, repeats) for kind, caller in CALLERS.items()}
    async with db.engine.begin() as conn:  # as migrated again, for the next size
        for index in indexes:
            await conn.run_sync(index.create)
    found = {kind: ([len(indexed[kind]["history"][key]) for key in ("recent_calls", "open_tickets", "voicemails")],
                    indexed[kind]["agent"]) for kind in CALLERS}
    same = all(indexed[kind]["history"] == bare[kind]["history"] and indexed[kind]["agent"] == bare[kind]["agent"]
               for kind in CALLERS)
    return {"rows": count, "repeats": repeats,
            "same_results": same and found == {"known": ([3, 2, 1], "alice"), "first_time": ([0, 0, 0], None)},
            **{kind: compared(indexed[kind], bare[kind]) for kind in CALLERS}}


def table(results: list[dict[str, Any]]) -> str:
    lines = ["| calls | caller | card, indexed ms | card, without ms | ratio | preferred agent, indexed ms "
             "| preferred agent, without ms | ratio |", "|---:|---|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        for kind in CALLERS:
            k = r[kind]
            lines.append(f"| {r['rows']:,} | {kind} | {k['card_indexed_ms']} | {k['card_without_ms']} "
                         f"| {k['card_ratio']} | {k['agent_indexed_ms']} | {k['agent_without_ms']} "
                         f"| {k['agent_ratio']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    run_sized_bench(__doc__ or "", rows="1000,10000,100000", repeats=30, measure=measure, table=table,
                    check="same_results",
                    url_help="a migrated database (default: a new SQLite file); its history is deleted")
