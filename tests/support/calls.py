"""Waiting for a real call's row to be closed by the server."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from cti.db import Database
from cti.db.models import CallRecord


async def finished_call(db: Database, caller: str | None = None, timeout: float = 45) -> CallRecord:
    """The first call row that has ended (from ``caller`` when given)."""
    query = select(CallRecord).where(CallRecord.ended_at.is_not(None))
    if caller is not None:
        query = query.where(CallRecord.caller_number == caller)
    async with asyncio.timeout(timeout):
        while True:
            async with db.session() as session:
                row = (await session.scalars(query)).first()
            if row is not None:
                return row
            await asyncio.sleep(0.2)
