"""``agi://host/incoming``: every inbound call starts here and runs its number's IVR flow.

The call gets a row first; the flow (:mod:`cti.ivr`) decides what the caller hears and where the call
goes; the ending is handed back to the dialplan through ``CTI_NEXT`` (voicemail, transfer, queue) or
is a hang-up. Whatever fails, the caller hears a prompt: a database outage runs the default flow
(greeting, then voicemail), an error inside a flow apologises and offers voicemail (or the flow's own
fallback ending).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from cti.agi import AgiEnvironment, AgiSession
from cti.call_records import open_call
from cti.contacts.profile import CallerProfile, is_withheld
from cti.db import Database
from cti.db.base import utcnow
from cti.db.models import CallRecord
from cti.ivr.agi_io import AgiCallIO
from cti.ivr.default_flow import DEFAULT_FLOW
from cti.ivr.engine import CallFacts, FlowRun, Outcome, ending_outcome
from cti.ivr.service import IvrService, PreparedCall
from cti.prompts import PromptStore
from cti.scripts.flow import CallContext, guarded_flow, store_outcome

log = logging.getLogger(__name__)
NEXT_VARIABLE = "CTI_NEXT"  # extensions.conf: where the call goes once this script returns
ERROR_PROMPT = "technical-difficulty"
CALL_OUTCOMES = {"voicemail": "to_voicemail", "transfer": "transferred", "enqueue": "queued", "hangup": "completed"}

OnClose = Callable[[AgiEnvironment, "CallContext"], Awaitable[None]]
"""Runs once the call is over and its row closed (e.g. a call-back ticket for an abandoned call)."""


@dataclass
class IncomingCall:
    db: Database
    prompts: PromptStore
    ivr: IvrService
    default_language: str = "en"
    on_close: OnClose | None = None

    async def __call__(self, session: AgiSession) -> None:
        ctx = CallContext(language=self.default_language)
        prepared: PreparedCall | None = None

        async def recover() -> None:
            await self._recover(session, ctx, prepared)

        try:
            async with guarded_flow(session, self.prompts, ctx, "incoming", recover):
                prepared = await self._identify(session, ctx)
                await session.answer()
                await self._run(session, ctx, prepared)
        finally:
            await self._close(session.env, ctx)

    async def _identify(self, session: AgiSession, ctx: CallContext) -> PreparedCall | None:
        """A database outage must not stop the call: we go on with the default flow and no row."""
        env = session.env
        row: dict[str, Any] = {"uniqueid": env.uniqueid, "channel": env.channel, "caller_number": env.callerid or "",
                               "caller_name": env.calleridname or "", "called_number": env.extension,
                               "language": ctx.language, "started_at": utcnow()}
        try:
            prepared = await self.ivr.prepare(env.extension, env.callerid or "")
            if prepared is not None:
                ctx.service, ctx.language = prepared.service, prepared.language
                row.update(service_id=prepared.service.id if prepared.service else None, language=ctx.language)
            ctx.call_id = await open_call(self.db, CallRecord(**row))
            return prepared
        except Exception:
            ctx.lookup_failed = True
            ctx.unsaved_row = row  # written with its outcome once the database is back (reports count the call)
            log.exception("call %s: database unavailable, running the default flow; its row is written later",
                          env.uniqueid)
            return None

    async def _run(self, session: AgiSession, ctx: CallContext, prepared: PreparedCall | None) -> None:
        if prepared is None and not ctx.lookup_failed:  # an outage must not say "not in service"
            ctx.path.append("unknown-number")
            await session.stream_file(self.prompts.playable(ctx.language, "unknown-number"))
            ctx.outcome = "unknown_number"
            await session.hangup()
            return
        if prepared is None:
            prepared = self._outage_plan(session.env, ctx)
        call_io = AgiCallIO(session, self.prompts, prepared.facts.instant)
        await call_io.set_language(ctx.language)
        run = FlowRun(prepared.flow, prepared.facts, call_io, ctx.language, wait_estimate=self.ivr.wait_estimate,
                      queue_check=self.ivr.queue_check, path=ctx.path)
        try:
            outcome = await run.run()
        finally:
            ctx.language = run.language
        await self._route(session, ctx, outcome)

    def _outage_plan(self, env: AgiEnvironment, ctx: CallContext) -> PreparedCall:
        """Without the database we know neither the flow nor the hours: greet and take a message."""
        caller = CallerProfile(number=env.callerid or "", anonymous=is_withheld(env.callerid or ""))
        facts = CallFacts(env.extension, caller, self.ivr.clock(), hours=None, next_opening=None)
        return PreparedCall(service=None, flow=DEFAULT_FLOW, facts=facts, language=ctx.language)

    async def _route(self, session: AgiSession, ctx: CallContext, outcome: Outcome) -> None:
        ctx.outcome = CALL_OUTCOMES[outcome.kind]
        match outcome.kind:
            case "voicemail":
                await session.set_variable(NEXT_VARIABLE, f"cti-voicemail,{outcome.reason},1")
            case "transfer":
                await session.set_variable(NEXT_VARIABLE, f"cti-transfer,{outcome.number},1")
            case "enqueue":
                await session.set_variable("CTI_QUEUE", outcome.queue)
                await session.set_variable("CTI_SKILLS", json.dumps(outcome.skills, separators=(",", ":")))
                await session.set_variable("CTI_PRIORITY", str(outcome.priority))
                await session.set_variable(NEXT_VARIABLE, f"cti-queue,{outcome.queue},1")
            case _:
                await session.hangup()

    async def _recover(self, session: AgiSession, ctx: CallContext, prepared: PreparedCall | None) -> None:
        """After an error: an apology, then the flow's fallback ending, or voicemail."""
        await session.stream_file(self.prompts.playable(ctx.language, ERROR_PROMPT))
        fallback = prepared.flow.nodes.get(prepared.flow.fallback) if prepared and prepared.flow.fallback else None
        ctx.path.append("error")
        await self._route(session, ctx, ending_outcome(fallback) or Outcome("voicemail", reason="request"))
        ctx.outcome = "error"

    async def _close(self, env: AgiEnvironment, ctx: CallContext) -> None:
        await store_outcome(self.db, ctx)
        if self.on_close is not None:
            try:
                await self.on_close(env, ctx)
            except Exception:
                log.exception("call %s: after-close hook failed", env.uniqueid)
