"""``agi://host/queue?queue=support``: a caller waits in an ACD queue until an agent answers.

The IVR's enqueue ending sends the call here (``CTI_QUEUE``, ``CTI_SKILLS``, ``CTI_PRIORITY`` set on the
channel). The caller hears music on hold, with an announcement every ``announce_every_s`` (position,
estimated wait, and "press star to leave a message"). When the ACD chooses an agent it redirects the
channel back into this script (``[cti-queue-resume]``): the new session dials the agent with music while it
rings. No answer: the caller is back on hold in its place. Max wait: voicemail (or another queue). Any
error: an apology, then voicemail. The caller never hears silence for long: at worst the music slice ends
and starts again.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass

from cti.acd.calls import CallPhase, QueuedCall
from cti.acd.config import QueueConfig
from cti.acd.model import UnknownQueue
from cti.acd.priority import caller_priority
from cti.acd.records import last_agent_for
from cti.acd.service import AcdService
from cti.agi import AgiHangup, AgiSession
from cti.call_records import find_call, new_call_row, open_call
from cti.contacts.directory import CallerDirectory
from cti.contacts.profile import CallerProfile
from cti.db import Database
from cti.db.base import utcnow
from cti.prompts import PromptStore
from cti.scripts.flow import play_fallback
from cti.scripts.incoming import ERROR_PROMPT, NEXT_VARIABLE
from cti.settings import AcdSettings

log = logging.getLogger(__name__)
POLL_SLICE_S = 2  # music slice when no AMI Redirect can interrupt it: the longest delay before ringing
VOICEMAIL_KEY = "*"
OVERFLOW_NEXT = "cti-voicemail,overflow,1"
REQUEST_NEXT = "cti-voicemail,request,1"


@dataclass
class QueueScript:
    acd: AcdService
    db: Database
    prompts: PromptStore
    directory: CallerDirectory
    settings: AcdSettings
    default_language: str = "en"

    async def __call__(self, session: AgiSession) -> None:
        call = self.acd.call_for(session.env.uniqueid)
        try:
            joining = call is None
            if call is None:
                call = await self._join(session)
                if call is None:
                    return
            if not joining:
                self.acd.attach(call, session)  # back after an AMI Redirect: this session holds the caller now
            else:
                await session.answer()
                await session.stream_file(self.prompts.playable(call.language, "queue-hold"))
            await self._hold(session, call)
        except AgiHangup:
            if call is not None and call.owner is session and not call.redirected:
                await self.acd.caller_left(call)
        except Exception:
            log.exception("queue script failed on %s", session.env.channel)
            if call is not None and call.owner is session and not call.redirected:
                await self.acd.caller_left(call, "to_voicemail")
                await self._apologise(session, call.language)

    # --- joining ----------------------------------------------------------------------------------------

    async def _join(self, session: AgiSession) -> QueuedCall | None:
        env = session.env
        name = env.query.get("queue") or await session.get_variable("CTI_QUEUE") or ""
        skills = _skills(await session.get_variable("CTI_SKILLS"))
        ivr_priority = _int(await session.get_variable("CTI_PRIORITY"))
        profile = await self._profile(env.callerid)
        preferred = await last_agent_for(self.db, env.callerid, self.settings.preferred_agent_days)
        call = QueuedCall(
            id=env.uniqueid, channel=env.channel, queue=name, arrived_at=self.acd.monotonic(), joined=utcnow(),
            priority=caller_priority(ivr_priority, profile, self.settings), caller=env.callerid or "",
            called=env.dnid if env.dnid not in ("", "unknown") else "", language=env.language or self.default_language,
            skills=skills, preferred_agent=preferred,
        )  # fmt: skip
        await self._ensure_row(session, call.language)
        # held by this session from the start: a hang-up during the hold message is the caller leaving, and an
        # agent offered meanwhile (the AMI Redirect may come before enqueue returns) is not undone by an attach
        self.acd.attach(call, session)
        try:
            await self.acd.enqueue(call)
        except UnknownQueue:
            log.warning("call %s: no queue %r; the caller is offered voicemail", env.uniqueid, name)
            await session.set_variable(NEXT_VARIABLE, OVERFLOW_NEXT)
            return None
        return call

    async def _ensure_row(self, session: AgiSession, language: str) -> None:
        """A call sent straight to a queue (not through the IVR) still gets its row."""
        try:
            if await find_call(self.db, session.env.uniqueid) is None:
                await open_call(self.db, new_call_row(session.env, language))
        except Exception:
            log.exception("call %s: could not open its row; queued without one", session.env.uniqueid)

    async def _profile(self, caller_id: str) -> CallerProfile | None:
        try:
            return await self.directory.lookup(caller_id or "", utcnow())
        except Exception:  # the priority bonus is lost, not the call
            log.exception("caller %s: lookup failed; queued without contract priority", caller_id)
            return None

    # --- holding ----------------------------------------------------------------------------------------

    async def _hold(self, session: AgiSession, call: QueuedCall) -> None:
        announce_at = self.acd.monotonic() + self._queue(call).announce_every_s
        while True:
            match call.phase:
                case CallPhase.OVERFLOW:
                    self.acd.forget(call)
                    await session.set_variable(NEXT_VARIABLE, OVERFLOW_NEXT)
                    return
                case CallPhase.ASSIGNED if not call.redirected:
                    if await self._connect(session, call):
                        return
                    continue
                case CallPhase.LEFT | CallPhase.ANSWERED | CallPhase.DIALING:
                    return
            queue = self._queue(call)
            now = self.acd.monotonic()
            if call.phase is CallPhase.WAITING and now >= announce_at:
                if await self._announce(session, call, queue) == VOICEMAIL_KEY and queue.offer_voicemail:
                    await self.acd.caller_left(call, "to_voicemail")
                    await session.set_variable(NEXT_VARIABLE, REQUEST_NEXT)
                    return
                announce_at = self.acd.monotonic() + queue.announce_every_s
                continue
            slice_s = max(1, math.ceil(announce_at - now))
            if not self.acd.wakes_by_redirect or call.phase is not CallPhase.WAITING:
                slice_s = min(slice_s, POLL_SLICE_S)
            await session.exec("MusicOnHold", queue.moh_class, str(slice_s), timeout=slice_s + 30)

    async def _announce(self, session: AgiSession, call: QueuedCall, queue: QueueConfig) -> str | None:
        """Position, estimated wait, the voicemail offer; a key pressed meanwhile is returned."""
        escape = VOICEMAIL_KEY if queue.offer_voicemail else ""
        language = call.language
        position = self.acd.position(call)
        if queue.announce_position and position is not None:
            key = await session.stream_file(self.prompts.playable(language, "queue-position"), escape)
            key = key or await session.say_number(position, escape)
            if key:
                return key
        estimate = self.acd.estimate(call, position)
        if queue.announce_wait and estimate is not None:
            key = await self._say_wait(session, language, estimate, escape)
            if key:
                return key
        if queue.offer_voicemail:
            return await session.stream_file(self.prompts.playable(language, "queue-offer-voicemail"), escape)
        return None

    async def _say_wait(self, session: AgiSession, language: str, estimate: float, escape: str) -> str | None:
        if estimate < 60:
            return await session.stream_file(self.prompts.playable(language, "queue-wait-soon"), escape)
        key = await session.stream_file(self.prompts.playable(language, "queue-wait"), escape)
        key = key or await session.say_number(round(estimate / 60), escape)
        return key or await session.stream_file(self.prompts.playable(language, "queue-minutes"), escape)

    # --- connecting ---------------------------------------------------------------------------------------

    async def _connect(self, session: AgiSession, call: QueuedCall) -> bool:
        """Ring the agent with music for the caller; True once the call is over, False if back in the queue."""
        plan = self.acd.start_dialing(call)
        await session.set_variable("__CTI_CALL_ID", call.id)  # inherited by the agent's leg (screen pops)
        await session.set_variable("__CTI_AGENT_ID", plan.agent_id)
        try:
            await session.exec("Dial", plan.dial, str(plan.ring_timeout_s), f"gm({plan.moh_class})", timeout=math.inf)
        except AgiHangup:
            await self.acd.dial_ended(call, None)
            raise
        status = await session.get_variable("DIALSTATUS") or "UNKNOWN"
        if not await self.acd.dial_ended(call, status):
            return False
        await session.stream_file(self.prompts.playable(call.language, "queue-goodbye"))
        await session.hangup()
        return True

    async def _apologise(self, session: AgiSession, language: str) -> None:
        try:
            await session.stream_file(self.prompts.playable(language, ERROR_PROMPT))
            await session.set_variable(NEXT_VARIABLE, REQUEST_NEXT)
        except AgiHangup:
            return
        except Exception:
            await play_fallback(session, self.prompts, language)

    def _queue(self, call: QueuedCall) -> QueueConfig:
        """The call's queue; one deleted meanwhile keeps defaults until the ACD moves the caller."""
        return self.acd.queue(call.queue) or QueueConfig(name=call.queue, label=call.queue)


def _skills(raw: str | None) -> dict[str, int] | None:
    """``CTI_SKILLS`` as set by the IVR (a JSON object); anything else means the queue's own skills."""
    try:
        value = json.loads(raw or "{}")
    except ValueError:
        return None
    if not isinstance(value, dict) or not all(skill and _level(level) for skill, level in value.items()):
        return None
    return {str(skill): level for skill, level in value.items()} or None


def _level(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _int(raw: str | None) -> int:
    try:
        return max(0, int(raw or 0))
    except ValueError:
        return 0
