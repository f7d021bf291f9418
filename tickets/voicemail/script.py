"""``agi://host/voicemail?reason=closed``: the dialplan or the IVR sends a caller here to leave a message.

``reason`` (closed, overflow, request) is stored with the recording; ``lang`` (en, fr) may force the
language. When the call already has a row (the IVR ran first on the same channel) that row is reused
and its path extended; otherwise one is opened. As in the incoming flow, a database outage never stops
the caller from leaving a message: the recording then waits on disk for orphan recovery.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from cti.agi import AgiEnvironment, AgiSession
from cti.call_records import PATH_SEPARATOR, find_call, new_call_row, open_call
from cti.db import Database
from cti.prompts import LANGUAGES, PromptStore
from cti.scripts.flow import CallContext, guarded_flow, store_outcome
from cti.settings import VoicemailSettings
from tickets.voicemail.node import Register, VoicemailOutcome, leave_voicemail
from tickets.voicemail.recordings import REASONS

log = logging.getLogger(__name__)


@dataclass
class VoicemailCall:
    db: Database
    prompts: PromptStore
    settings: VoicemailSettings
    media_dir: Path
    register: Register
    default_language: str = "en"

    async def __call__(self, session: AgiSession) -> None:
        ctx = CallContext(language=self._requested_language(session.env))
        reason = call_reason(session.env)
        try:
            async with guarded_flow(session, self.prompts, ctx, "voicemail"):
                await self._identify(session.env, ctx)
                await session.answer()
                outcome = await leave_voicemail(
                    session, prompts=self.prompts, language=ctx.language, settings=self.settings,
                    media_dir=self.media_dir, register=self.register, reason=reason, call_id=ctx.call_id,
                    ivr_path=PATH_SEPARATOR.join(ctx.path))
                ctx.path.append(f"voicemail:{reason}")
                ctx.outcome = outcome.call_outcome
                await self._goodbye(session, ctx, outcome)
        finally:
            await store_outcome(self.db, ctx)

    def _requested_language(self, env: AgiEnvironment) -> str:
        """``?lang=`` first, then the channel's language, then the default; always one we have prompts for."""
        for candidate in (env.query.get("lang", ""), env.language):
            if candidate in LANGUAGES:
                return candidate
        return self.default_language

    async def _identify(self, env: AgiEnvironment, ctx: CallContext) -> None:
        """Reuse the call's row (and its language, unless forced) or open one; an outage is not fatal."""
        try:
            existing = await find_call(self.db, env.uniqueid)
            if existing is None:
                ctx.call_id = await open_call(self.db, new_call_row(env, ctx.language))
                return
            ctx.call_id = existing.id
            ctx.path = [part for part in existing.path.split(PATH_SEPARATOR) if part]
            if "lang" not in env.query and existing.language in LANGUAGES:
                ctx.language = existing.language
        except Exception:
            ctx.lookup_failed = True
            log.exception("call %s: database unavailable, recording without a call record", env.uniqueid)

    async def _goodbye(self, session: AgiSession, ctx: CallContext, outcome: VoicemailOutcome) -> None:
        """"Saved" was said by the node; a caller who left nothing hears goodbye."""
        if session.hung_up:
            return
        if outcome.status != "saved":
            ctx.path.append("goodbye")
            await session.stream_file(self.prompts.playable(ctx.language, "goodbye"))
        await session.hangup()



def call_reason(env: AgiEnvironment) -> str:
    """Why the caller is here (``?reason=``); anything unexpected is an explicit request."""
    reason = env.query.get("reason", "")
    return reason if reason in REASONS else "request"
