"""What every call flow shares: the call's context, the fallback prompt, and storing the outcome.

Both steps here swallow their own failures on purpose: they run when something already went wrong
(fallback) or when the call is over (outcome), and must never turn into dead air or a lost row.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from cti.agi import AgiHangup, AgiSession
from cti.call_records import close_call
from cti.db import Database
from cti.db.models import ServiceNumber
from cti.prompts import PromptStore

log = logging.getLogger(__name__)
FALLBACK_PROMPT = "technical-problem"


@dataclass
class CallContext:
    """What the flow learnt so far; ``path`` is the IVR path kept on the call's row."""

    language: str
    service: ServiceNumber | None = None
    lookup_failed: bool = False
    call_id: int | None = None
    path: list[str] = field(default_factory=list)
    outcome: str = "in_progress"


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


async def store_outcome(db: Database, ctx: CallContext) -> None:
    if ctx.call_id is None:
        return
    try:
        await close_call(db, ctx.call_id, ctx.outcome, ctx.path, ctx.language)
    except Exception:
        log.exception("call %s: could not store its outcome %s", ctx.call_id, ctx.outcome)
