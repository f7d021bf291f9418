"""``agi://host/incoming``: every inbound call starts here.

This is the foundation's flow: identify the service from the called number, greet the caller in the
service's language, read one key and say it back. The IVR engine (``cti.ivr``) takes over this entry
point with per-number flows; what stays is the contract: the call gets a row, and whatever fails, the
caller hears a prompt rather than dead air.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from cti.agi import AgiEnvironment, AgiSession
from cti.call_records import find_service, open_call
from cti.db import Database
from cti.db.models import CallRecord
from cti.prompts import PromptStore
from cti.scripts.flow import CallContext, guarded_flow, store_outcome

log = logging.getLogger(__name__)
DIGIT_TIMEOUT_MS = 5000
VOICEMAIL_DIGIT = "9"
NEXT_VARIABLE = "CTI_NEXT"  # extensions.conf: where the call goes once this script returns


OnClose = Callable[[AgiEnvironment, "CallContext"], Awaitable[None]]
"""Runs once the call is over and its row closed (e.g. a call-back ticket for an abandoned call)."""


@dataclass
class IncomingCall:
    db: Database
    prompts: PromptStore
    default_language: str = "en"
    on_close: OnClose | None = None

    async def __call__(self, session: AgiSession) -> None:
        ctx = CallContext(language=self.default_language)
        try:
            async with guarded_flow(session, self.prompts, ctx, "incoming"):
                await self._identify(session, ctx)
                await session.answer()
                await self._run(session, ctx)
        finally:
            await self._close(session.env, ctx)

    async def _identify(self, session: AgiSession, ctx: CallContext) -> None:
        """A database outage must not stop the call: we go on with the defaults and no row."""
        env = session.env
        try:
            ctx.service = await find_service(self.db, env.extension)
            if ctx.service is not None:
                ctx.language = ctx.service.language
            ctx.call_id = await open_call(self.db, CallRecord(
                uniqueid=env.uniqueid, channel=env.channel, caller_number=env.callerid or "",
                caller_name=env.calleridname or "", called_number=env.extension,
                service_id=ctx.service.id if ctx.service else None, language=ctx.language))
        except Exception:
            ctx.lookup_failed = True
            log.exception("call %s: database unavailable, continuing without a call record", env.uniqueid)

    async def _run(self, session: AgiSession, ctx: CallContext) -> None:
        if ctx.service is None and not ctx.lookup_failed:  # an outage must not say "not in service"
            await self._play(session, ctx, "unknown-number")
            ctx.outcome = "unknown_number"
            await session.hangup()
            return
        await self._play(session, ctx, "welcome")
        result = await session.get_data(self.prompts.playable(ctx.language, "demo-menu"), DIGIT_TIMEOUT_MS, 1)
        if result.digits == VOICEMAIL_DIGIT:
            await self._to_voicemail(session, ctx)
            return
        if result.digits:
            ctx.path.append(f"menu:{result.digits}")
            await self._play(session, ctx, "you-pressed")
            await session.say_digits(result.digits)
        else:
            ctx.path.append("menu:no-input")
            await self._play(session, ctx, "no-input")
        await self._play(session, ctx, "goodbye")
        ctx.outcome = "completed"
        await session.hangup()

    async def _to_voicemail(self, session: AgiSession, ctx: CallContext) -> None:
        """The dialplan's [cti-voicemail] runs the ``voicemail`` script next, on the same channel and call row."""
        ctx.path.append(f"menu:{VOICEMAIL_DIGIT}")
        await session.set_variable(NEXT_VARIABLE, "cti-voicemail,request,1")
        ctx.outcome = "to_voicemail"

    async def _play(self, session: AgiSession, ctx: CallContext, name: str) -> None:
        ctx.path.append(name)
        await session.stream_file(self.prompts.playable(ctx.language, name))

    async def _close(self, env: AgiEnvironment, ctx: CallContext) -> None:
        await store_outcome(self.db, ctx)
        if self.on_close is not None:
            try:
                await self.on_close(env, ctx)
            except Exception:
                log.exception("call %s: after-close hook failed", env.uniqueid)
