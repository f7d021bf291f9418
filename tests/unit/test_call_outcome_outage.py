"""A call's outcome the database could not take (it was out of reach when the call ended) is written once the
database is back, so the row does not stay "in progress" for ever; a wrong write is not retried. A call that
came in while the database was away gets its whole row then, with its real start and end.

The outage is real: the PostgreSQL database is reached through a TCP proxy the test cuts.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select

from cti.call_records import open_call
from cti.db import Database
from cti.db.base import utcnow
from cti.db.models import CallRecord
from cti.scripts.flow import CallContext, pending_outcomes, store_outcome
from tests.support.tcp_proxy import TcpProxy
from tickets.service import as_utc

pytestmark = pytest.mark.postgres
QUICK = (0.05,) * 400  # the limit only stops a hung test; nothing here asserts speed




async def _row(db: Database, call_id: int) -> CallRecord:
    async with db.session() as session:
        return (await session.scalars(select(CallRecord).where(CallRecord.id == call_id))).one()


async def _context(db: Database) -> CallContext:
    call_id = await open_call(db, CallRecord(uniqueid="1732350000.1", channel="Local/x", caller_number="0612345678",
                                             called_number="5553700", language="en"))
    return CallContext(language="en", call_id=call_id, path=["welcome", "main:9", "message"], outcome="to_voicemail")


async def test_the_outcome_is_stored_once_the_database_is_back(proxied_db: tuple[Database, TcpProxy]) -> None:
    db, proxy = proxied_db
    ctx = await _context(db)
    await proxy.cut()
    await store_outcome(db, ctx, QUICK)  # returns at once: the caller's call is not held up
    await proxy.restore()
    await pending_outcomes()
    row = await _row(db, ctx.call_id or 0)
    assert (row.outcome, row.path) == ("to_voicemail", "welcome > main:9 > message")
    assert row.ended_at is not None


async def test_an_outcome_the_database_refuses_is_not_retried(
    proxied_db: tuple[Database, TcpProxy], caplog: pytest.LogCaptureFixture,
) -> None:
    db, _proxy = proxied_db
    ctx = await _context(db)
    ctx.outcome = "x" * 10_000  # longer than the column: a mistake, not an outage
    await store_outcome(db, ctx, QUICK)
    await pending_outcomes()
    assert "could not store its outcome" in caplog.text
    assert (await _row(db, ctx.call_id or 0)).outcome == "in_progress"


async def test_an_outcome_is_given_up_when_the_database_stays_away(
    proxied_db: tuple[Database, TcpProxy], caplog: pytest.LogCaptureFixture,
) -> None:
    db, proxy = proxied_db
    ctx = await _context(db)
    await proxy.cut()
    await store_outcome(db, ctx, (0.01, 0.01))
    await pending_outcomes()
    assert "lost: the database stayed out of reach" in caplog.text


async def test_a_call_that_came_in_during_the_outage_gets_its_whole_row_once_the_database_is_back(
    proxied_db: tuple[Database, TcpProxy],
) -> None:
    db, proxy = proxied_db
    started = utcnow() - timedelta(seconds=40)
    row = {"uniqueid": "1732350000.9", "channel": "Local/y", "caller_number": "0612345678", "caller_name": "",
           "called_number": "5553700", "language": "en", "started_at": started}
    ctx = CallContext(language="fr", lookup_failed=True, unsaved_row=row, path=["welcome", "message"],
                      outcome="to_voicemail")
    await proxy.cut()
    ended = utcnow()
    await store_outcome(db, ctx, QUICK)
    await asyncio.sleep(0.05)  # the database stays away a little: the row must keep the call's real times
    restored = utcnow()
    await proxy.restore()
    await pending_outcomes()

    async def rows() -> list[CallRecord]:
        async with db.session() as session:
            return list(await session.scalars(select(CallRecord).where(CallRecord.uniqueid == "1732350000.9")))

    [stored] = await rows()
    assert (stored.outcome, stored.path, stored.language, stored.caller_number) == (
        "to_voicemail", "welcome > message", "fr", "0612345678")
    assert as_utc(stored.started_at) == started
    assert stored.ended_at is not None and ended <= as_utc(stored.ended_at) < restored
    await store_outcome(db, ctx, QUICK)  # stored again (a script run twice on the channel): still one row
    assert len(await rows()) == 1
