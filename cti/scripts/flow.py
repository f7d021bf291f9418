"""What every call flow shares: the call's context, the fallback prompt, and storing the outcome.

Both steps here swallow their own failures on purpose: they run when something already went wrong
(fallback) or when the call is over (outcome), and must never turn into dead air or a lost row. An outcome
the database could not take (it was out of reach) is written again in the background until it can be
(``OUTCOME_RETRIES_S``), so a call answered before an outage does not stay "in progress" for ever.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cti.agi import AgiHangup, AgiSession
from cti.call_records import close_call, open_call
from cti.db import Database, is_unavailable
from cti.db.base import utcnow
from cti.db.models import CallRecord, ServiceNumber
from cti.prompts import PromptStore

log = logging.getLogger(__name__)
FALLBACK_PROMPT = "technical-problem"
OUTCOME_RETRIES_S = (1.0, 2.0, 5.0, 10.0, 30.0, *(60.0,) * 15)  # about 17 minutes, then the outcome is given up
_retrying: set[asyncio.Task[None]] = set()  # strong references: a task nobody holds may be collected


@dataclass
class CallContext:
    """What the flow learnt so far; ``path`` is the IVR path kept on the call's row."""

    language: str
    service: ServiceNumber | None = None
    lookup_failed: bool = False
    call_id: int | None = None
    path: list[str] = field(default_factory=list)
    outcome: str = "in_progress"
    unsaved_row: dict[str, Any] | None = None  # the row the database could not take: written once it is back


Recover = Callable[[], Awaitable[None]]


@asynccontextmanager
async def guarded_flow(session: AgiSession, prompts: PromptStore, ctx: CallContext, name: str,
                       recover: Recover | None = None) -> AsyncIterator[None]:
    """Runs a flow's body: a hang-up ends it as abandoned (unless it already had an outcome); any other
    error is logged, recorded as "error", and ``recover`` runs (e.g. an apology, then voicemail); without
    one, or if it fails too, the caller hears the fallback prompt and the line is hung up."""
    try:
        yield
    except AgiHangup:
        ctx.outcome = "abandoned" if ctx.outcome == "in_progress" else ctx.outcome
    except Exception:
        log.exception("%s flow failed on %s", name, session.env.channel)
        ctx.outcome = "error"
        if recover is not None and await _recovered(session, recover):
            return
        await play_fallback(session, prompts, ctx.language)


async def _recovered(session: AgiSession, recover: Recover) -> bool:
    try:
        await recover()
    except AgiHangup:
        return True
    except Exception:
        log.exception("recovery failed on %s", session.env.channel)
        return False
    return True


async def play_fallback(session: AgiSession, prompts: PromptStore, language: str) -> None:
    """The caller hears an apology, then the line is hung up; if even that fails, the dialplan's own fallback runs."""
    try:
        await session.stream_file(prompts.playable(language, FALLBACK_PROMPT))
        await session.hangup()
    except Exception:
        log.warning("fallback prompt could not be played on %s", session.env.channel)


async def store_outcome(db: Database, ctx: CallContext, retries_s: tuple[float, ...] = OUTCOME_RETRIES_S) -> None:
    """Close the call's row, or write it whole if the database was down when the call came in; with the
    database out of reach, keep trying in the background (the row keeps the call's real end)."""
    if ctx.call_id is None and ctx.unsaved_row is None:
        return
    closing = _Closing(db, ctx.call_id, ctx.outcome, list(ctx.path), ctx.language, utcnow(), ctx.unsaved_row)
    try:
        await closing.write()
    except Exception as exc:
        if not is_unavailable(exc):
            log.exception("call %s: could not store its outcome %s", closing.name, ctx.outcome)
            return
        log.warning("call %s: database unavailable; its outcome %s is stored once it is back", closing.name,
                    ctx.outcome)
        task = asyncio.ensure_future(closing.retry(retries_s))
        _retrying.add(task)
        task.add_done_callback(_retrying.discard)


async def pending_outcomes() -> None:
    """Wait for the outcomes still being retried (tests; a stopping server may simply drop them)."""
    await asyncio.gather(*_retrying, return_exceptions=True)


@dataclass(frozen=True)
class _Closing:
    db: Database
    call_id: int | None  # None: the row was never written (``row`` holds it)
    outcome: str
    path: list[str]
    language: str
    ended_at: datetime
    row: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        return str(self.call_id) if self.call_id is not None else str((self.row or {}).get("uniqueid", "?"))

    async def write(self) -> None:
        call_id = self.call_id
        if call_id is None:  # one row per uniqueid: a retry after a half-done write finds the row it made
            call_id = await open_call(self.db, CallRecord(**(self.row or {})))
        await close_call(self.db, call_id, self.outcome, self.path, self.language, ended_at=self.ended_at)

    async def retry(self, delays_s: tuple[float, ...]) -> None:
        for delay in delays_s:
            await asyncio.sleep(delay)
            try:
                await self.write()
            except Exception as exc:
                if is_unavailable(exc):
                    continue
                log.exception("call %s: could not store its outcome %s", self.name, self.outcome)
                return
            log.info("call %s: outcome %s stored after the database outage", self.name, self.outcome)
            return
        log.error("call %s: outcome %s lost: the database stayed out of reach", self.name, self.outcome)
