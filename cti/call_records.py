"""The call's row: opened when Asterisk hands the call over, closed with its outcome."""

from __future__ import annotations

from sqlalchemy import select, update

from cti.agi import AgiEnvironment
from cti.db import Database
from cti.db.base import utcnow
from cti.db.models import CallRecord, ServiceNumber

PATH_SEPARATOR = " > "  # how a call's IVR path is stored: "welcome > menu:9 > voicemail:request"
CONTINUING = frozenset({"queued"})  # outcomes after which another script goes on with the call and ends it


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
    async with db.session() as session:
        session.add(record)
        await session.flush()
        return record.id


async def close_call(db: Database, call_id: int, outcome: str, path: list[str], language: str | None = None) -> None:
    """``language``: the one the caller ended in (they may have chosen another at a language menu)."""
    values: dict[str, object] = {"outcome": outcome, "path": PATH_SEPARATOR.join(path)}
    if outcome not in CONTINUING:
        values["ended_at"] = utcnow()
    if language is not None:
        values["language"] = language
    async with db.session() as session:
        await session.execute(update(CallRecord).where(CallRecord.id == call_id).values(**values))
