"""The ACD's part of a call's row: queue, agent, wait and talk times, outcome, and the path it took.

Every write swallows and logs database errors: the caller is already connected (or gone), and a missing
figure in a report is better than a dropped call. The row is found by the channel's uniqueid, which the
incoming script used to open it.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from cti.call_records import PATH_SEPARATOR
from cti.db import Database
from cti.db.base import utcnow
from cti.db.models import CallRecord

log = logging.getLogger(__name__)


async def update_call(db: Database, uniqueid: str, path: list[str] | None = None, **values: Any) -> None:
    """Set ``values`` on the call's row and append ``path`` to its IVR path."""
    try:
        async with db.session() as session:
            row = (await session.scalars(select(CallRecord).where(CallRecord.uniqueid == uniqueid))).first()
            if row is None:
                return
            if path:
                values["path"] = PATH_SEPARATOR.join([*filter(None, row.path.split(PATH_SEPARATOR)), *path])
            await session.execute(update(CallRecord).where(CallRecord.id == row.id).values(**values))
    except Exception:
        log.exception("call %s: could not update its row with %s", uniqueid, sorted(values))


async def last_agent_for(db: Database, caller_number: str, days: int, now: datetime | None = None) -> str | None:
    """The agent who last answered this caller within ``days`` (the preferred agent), if any."""
    if not caller_number or days <= 0:
        return None
    since = (now or utcnow()) - timedelta(days=days)
    try:
        async with db.session() as session:
            found = await session.scalars(
                select(CallRecord.agent_id)
                .where(CallRecord.caller_number == caller_number, CallRecord.answered_at.is_not(None),
                       CallRecord.agent_id.is_not(None), CallRecord.started_at >= since)
                .order_by(CallRecord.started_at.desc())
                .limit(1)
            )
            return found.first()
    except Exception:
        log.exception("caller %s: could not look up the last agent", caller_number)
        return None


def ended(outcome: str, **values: Any) -> dict[str, Any]:
    """The values closing a row: the outcome and the end instant."""
    return {"outcome": outcome, "ended_at": utcnow(), **values}


async def note_answer(db: Database, uniqueid: str, agent_id: str, answered_at: datetime) -> None:
    """The agent who answered, on a row that does not say so yet: the node that saw the answer may have died
    before writing it (a value already there is kept: it was written by the node that saw the answer)."""
    try:
        async with db.session() as session:
            await session.execute(
                update(CallRecord)
                .where(CallRecord.uniqueid == uniqueid, CallRecord.agent_id.is_(None))
                .values(agent_id=agent_id, answered_at=answered_at)
            )
    except Exception:
        log.exception("call %s: could not record agent %s", uniqueid, agent_id)
