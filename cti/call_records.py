"""The call's row: opened when Asterisk hands the call over, closed with its outcome."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from cti.agi import AgiEnvironment
from cti.db import Database
from cti.db.base import utcnow
from cti.db.models import CallRecord, ServiceNumber

PATH_SEPARATOR = " > "  # how a call's IVR path is stored: "welcome > menu:9 > voicemail:request"
CONTINUING = frozenset({"queued"})  # outcomes after which another script goes on with the call and ends it
INTERRUPTED = "interrupted"  # the server that held the call died and the caller's channel is gone


async def find_service(db: Database, number: str) -> ServiceNumber | None:
    async with db.session() as session:
        found = await session.scalars(
            select(ServiceNumber).where(ServiceNumber.number == number, ServiceNumber.enabled.is_(True))
        )
        return found.first()


async def find_call(db: Database, uniqueid: str) -> CallRecord | None:
    """The row of the call on channel ``uniqueid`` (scripts after the first extend the same row)."""
    async with db.session() as session:
        return (await session.scalars(select(CallRecord).where(CallRecord.uniqueid == uniqueid))).first()


def new_call_row(env: AgiEnvironment, language: str) -> CallRecord:
    """A row for a call that reached a later script without going through ``incoming``."""
    return CallRecord(uniqueid=env.uniqueid, channel=env.channel, caller_number=_known(env.callerid),
                      caller_name=_known(env.calleridname), called_number=_known(env.extension), language=language)


def _known(value: str) -> str:
    return "" if value == "unknown" else value


async def open_call(db: Database, record: CallRecord) -> int:
    """The id of the call's row, created unless the channel already has one: a channel that comes back to a
    script (after a server restart, or a script run twice by the dialplan) keeps one row per uniqueid."""
    existing = await find_call(db, record.uniqueid)
    if existing is not None:
        return existing.id
    try:
        async with db.session() as session:
            session.add(record)
            await session.flush()
            return record.id
    except IntegrityError:  # another session opened it at the same instant (uniqueid is unique)
        found = await find_call(db, record.uniqueid)
        if found is None:
            raise
        return found.id


async def close_call(db: Database, call_id: int, outcome: str, path: list[str], language: str | None = None,
                     ended_at: datetime | None = None) -> None:
    """``language``: the one the caller ended in (they may have chosen another at a language menu);
    ``ended_at``: when the call ended, if that was before now (written late, after a database outage)."""
    values: dict[str, object] = {"outcome": outcome, "path": PATH_SEPARATOR.join(path)}
    if outcome not in CONTINUING:
        values["ended_at"] = ended_at or utcnow()
    if language is not None:
        values["language"] = language
    async with db.session() as session:
        await session.execute(update(CallRecord).where(CallRecord.id == call_id).values(**values))


async def open_uniqueids(db: Database, since: datetime | None = None, limit: int = 1000) -> list[str]:
    """Uniqueids of rows not closed yet (started at or after ``since``: the index keeps periodic sweeps cheap)."""
    query = select(CallRecord.uniqueid).where(CallRecord.ended_at.is_(None))
    if since is not None:
        query = query.where(CallRecord.started_at >= since)
    async with db.session() as session:
        return list(await session.scalars(query.order_by(CallRecord.started_at).limit(limit)))


async def close_interrupted(db: Database, uniqueids: Collection[str]) -> int:
    """Close these rows as ``interrupted``, each once: a row already closed (by its script, by another node's
    sweep, by an earlier pass) is left as it is. Returns how many rows this call closed."""
    if not uniqueids:
        return 0
    async with db.session() as session:
        done = await session.execute(
            update(CallRecord)
            .where(CallRecord.uniqueid.in_(list(uniqueids)), CallRecord.ended_at.is_(None))
            .values(outcome=INTERRUPTED, ended_at=utcnow())
        )
        return int(getattr(done, "rowcount", 0) or 0)
