"""Reads that run on every call or every few minutes go through an index (migration 0011), on SQLite and PostgreSQL.

The screen pop (recent calls, open tickets, voicemails) and the ACD's preferred agent read a caller's history on
every call; the voicemail recovery looks for unfiled messages every few minutes. Without their indexes each read
walked the whole table: a cost that grows with the help desk's history, and the page churn the soak saw as memory
growth. The statements are the ones the code really runs (captured from the engine), explained by the database.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event, text

from cti.acd.records import last_agent_for
from cti.agents.cards import CardBuilder, RingingCall
from cti.contacts.directory import CallerDirectory
from cti.db import Database
from cti.db.models import CallRecord
from tickets.models import Recording, Ticket
from tickets.voicemail.recordings import recover_orphans

CALLER = "+33612345678"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
HISTORY_TABLES = {"calls": "ix_calls_caller_number_started_at",
                  "tickets": "ix_tickets_caller_number_created_at",
                  "recordings": "ix_recordings_caller_number_created_at"}


@contextmanager
def captured(db: Database) -> Iterator[list[tuple[str, Any]]]:
    """The SQL statements (with their parameters) the engine runs inside the block."""
    seen: list[tuple[str, Any]] = []

    def remember(_conn: object, _cursor: object, statement: str, parameters: Any, *_: object) -> None:
        seen.append((statement, parameters))

    event.listen(db.engine.sync_engine, "before_cursor_execute", remember)
    try:
        yield seen
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", remember)


async def _seed(db: Database) -> None:
    """300 other callers, each with a call, an open ticket and a voicemail (filed in that ticket but every
    10th, not filed yet): enough rows that a planner with statistics would rather use an index than scan."""
    async with db.session() as session:
        for n in range(300):
            number = f"+3361{n:07d}"
            at = T0 - timedelta(minutes=n)
            session.add(CallRecord(uniqueid=f"old.{n}", channel=f"PJSIP/t-{n}", caller_number=number, started_at=at,
                                   answered_at=at, agent_id="bob"))
            ticket = Ticket(subject=f"t{n}", caller_number=number, status="open", created_at=at)
            session.add(ticket)
            await session.flush()
            session.add(Recording(path=f"vm/{n}.wav", caller_number=number, created_at=at,
                                  ticket_id=None if n % 10 == 0 else ticket.id))
        session.add(CallRecord(uniqueid="now", channel="PJSIP/t-now", caller_number=CALLER, started_at=T0))
    async with db.engine.begin() as conn:  # committed: PostgreSQL's statistics are transactional
        if conn.dialect.name == "postgresql":  # its statistics, as autovacuum keeps them on a live desk
            await conn.execute(text("ANALYZE"))


async def _plan(db: Database, statement: str, parameters: Any) -> str:
    async with db.engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            rows = await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
            return "\n".join(str(row[-1]) for row in rows)
        await conn.execute(text("SET enable_seqscan = off"))  # the plan the table will get once it is big
        rows = await conn.exec_driver_sql(f"EXPLAIN {statement}", parameters)
        return "\n".join(str(row[0]) for row in rows)


async def _history_reads(db: Database, statements: list[tuple[str, Any]]) -> dict[str, str]:
    """Table -> plan of each statement filtering a history table on the caller's number."""
    plans: dict[str, str] = {}
    for statement, parameters in statements:
        lowered = statement.lower()
        for table in HISTORY_TABLES:
            if f"from {table}" in lowered and f"{table}.caller_number" in lowered:
                plans[table] = await _plan(db, statement, parameters)
    return plans


async def test_the_screen_pop_reads_each_history_table_through_its_caller_index(database: Database) -> None:
    await _seed(database)
    with captured(database) as statements:
        card = await CardBuilder(database, CallerDirectory(database, "FR")).build(
            RingingCall(call_id="now", agent_id="alice", caller=CALLER))
    assert card["recent_calls"] == [] and card["open_tickets"] == [] and card["voicemails"] == []

    plans = await _history_reads(database, statements)
    assert set(plans) == set(HISTORY_TABLES), plans
    for table, index in HISTORY_TABLES.items():
        assert index in plans[table], f"{table}: {plans[table]}"


async def test_the_preferred_agent_lookup_reads_the_caller_index(database: Database) -> None:
    await _seed(database)
    with captured(database) as statements:
        agent = await last_agent_for(database, "+33610000007", days=30, now=T0 + timedelta(hours=1))
    assert agent == "bob"

    plans = await _history_reads(database, statements)
    assert HISTORY_TABLES["calls"] in plans["calls"], plans


async def test_the_voicemail_recovery_finds_unfiled_messages_through_an_index(
    database: Database, tmp_path: Path
) -> None:
    await _seed(database)
    with captured(database) as statements:
        recovery = await recover_orphans(database, tmp_path)
    assert recovery.jobs_added == 30  # the unfiled voicemails had no transcription job: each got one

    plans = [await _plan(database, statement, parameters) for statement, parameters in statements
             if "recordings.ticket_id IS NULL" in statement and "transcription_jobs" in statement]
    assert plans, "the recovery's query was not seen"
    for plan in plans:
        assert "ix_recordings_ticket_id" in plan, plan
