"""Screen pops: the ACD's call steps turned into events on the desktops of the agents concerned.

* ringing: the card (:mod:`cti.agents.cards`) goes to the agent being rung, and only to them;
* answered: that agent's card turns "answered"; any other agent still showing the call has it withdrawn;
* not answered, caller gone: the card is withdrawn, with the reason;
* ended: the card stays, "ended", until the agent sets the call's outcome or dismisses it;
* recovered (the node holding the call died, :mod:`cti.acd.recovery`): a ring that is over is withdrawn
  ("interrupted"), an answer is shown, a conversation that is over ends (its length unknown).

The steps of one call are handled one after the other, in the order the ACD saw them, even though building
the ringing card takes a few database reads: an "answered" never overtakes its "ringing".
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any

from cti.acd.calls import QueuedCall
from cti.acd.recovery import Verdict
from cti.agents.cards import CardBuilder, RingingCall
from cti.agents.events import AgentEvents

log = logging.getLogger(__name__)


def ringing_call(call: QueuedCall, agent_id: str, waited_s: float) -> RingingCall:
    return RingingCall(call_id=call.id, agent_id=agent_id, caller=call.caller, called=call.called,
                       language=call.language, queue=call.queue, priority=call.priority, joined=call.joined,
                       waited_s=waited_s, path=tuple(call.path[call.written:]))  # the rest is in the row


class ScreenPops:
    """An ACD :class:`~cti.acd.listeners.CallListener`."""

    def __init__(self, events: AgentEvents, cards: CardBuilder) -> None:
        self.events = events
        self.cards = cards
        self._showing: dict[str, set[str]] = {}  # call id -> agents whose desktop shows it ringing/answered
        self._chains: dict[str, asyncio.Future[None]] = {}

    async def ringing(self, call: QueuedCall, agent_id: str) -> None:
        await self._in_order(call.id, self._ring(ringing_call(call, agent_id, _waited(call))))

    async def answered(self, call: QueuedCall, agent_id: str) -> None:
        await self._in_order(call.id, self._answer(call.id, agent_id))

    async def not_answered(self, call: QueuedCall, agent_id: str, status: str) -> None:
        await self._in_order(call.id, self._withdraw(call.id, agent_id, "not_answered", status=status))

    async def caller_left(self, call: QueuedCall, agent_id: str | None, reason: str) -> None:
        if agent_id is not None:
            why = "caller_hung_up" if reason == "abandoned" else reason
            await self._in_order(call.id, self._withdraw(call.id, agent_id, why))

    async def ended(self, call: QueuedCall, agent_id: str, talk_s: float) -> None:
        await self._in_order(call.id, self._end(call.id, agent_id, talk_s))

    async def recovered(self, call_id: str, agent_id: str, outcome: Verdict) -> None:
        match outcome:
            case Verdict.RELEASE:
                step = self._withdraw(call_id, agent_id, "interrupted")
            case Verdict.ANSWERED:
                step = self._answer(call_id, agent_id)
            case _:
                step = self._end(call_id, agent_id, None)
        await self._in_order(call_id, step)

    # --- the steps -------------------------------------------------------------------------------------------

    async def _ring(self, call: RingingCall) -> None:
        card = await self.cards.build(call)
        self._showing.setdefault(call.call_id, set()).add(call.agent_id)
        await self.events.keep_card(call.agent_id, card)
        await self.events.emit(call.agent_id, "call_ringing", card)

    async def _answer(self, call_id: str, agent_id: str) -> None:
        at = datetime.now(UTC).isoformat()
        await self._update_card(agent_id, call_id, status="answered", answered_at=at)
        await self.events.emit(agent_id, "call_answered", {"call_id": call_id, "answered_at": at})
        for other in sorted(self._showing.get(call_id, set()) - {agent_id}):
            await self._withdraw(call_id, other, "answered_elsewhere", by=agent_id)
        self._showing[call_id] = {agent_id}

    async def _withdraw(self, call_id: str, agent_id: str, reason: str, **details: str) -> None:
        showing = self._showing.get(call_id, set())
        showing.discard(agent_id)
        if not showing:  # the call left every screen (the caller hung up): forget it
            self._showing.pop(call_id, None)
        await self.events.drop_card(agent_id, call_id)
        await self.events.emit(agent_id, "call_withdrawn", {"call_id": call_id, "reason": reason, **details})

    async def _end(self, call_id: str, agent_id: str, talk_s: float | None) -> None:
        """``talk_s`` None: not known (the node that timed the call died), left out of the card and event."""
        self._showing.pop(call_id, None)
        at = datetime.now(UTC).isoformat()
        talked = {} if talk_s is None else {"talk_s": round(talk_s, 1)}
        await self._update_card(agent_id, call_id, status="ended", ended_at=at, **talked)
        await self.events.emit(agent_id, "call_ended", {"call_id": call_id, "ended_at": at, **talked})

    async def _update_card(self, agent_id: str, call_id: str, **changes: Any) -> None:
        try:
            card = await self.events.card(agent_id, call_id)
        except Exception:  # the shared state is down: the event below still tells the desktop
            log.warning("call %s: card of agent %s not readable", call_id, agent_id)
            return
        if card is not None:
            await self.events.keep_card(agent_id, {**card, **changes})

    # --- ordering ---------------------------------------------------------------------------------------------

    async def _in_order(self, call_id: str, step: Awaitable[None]) -> None:
        """Run ``step`` after the call's previous steps; a failed step is logged and does not stop the next."""
        previous = self._chains.get(call_id)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._chains[call_id] = done
        try:
            if previous is not None:
                await asyncio.shield(previous)
            await step
        except Exception:
            log.exception("call %s: screen pop step failed", call_id)
        finally:
            done.set_result(None)
            if self._chains.get(call_id) is done:  # nothing queued behind: forget the call's chain
                del self._chains[call_id]


def _waited(call: QueuedCall) -> float:
    """Seconds since the caller joined its first queue (``joined`` is kept across overflows)."""
    return max(0.0, (datetime.now(UTC) - call.joined.astimezone(UTC)).total_seconds())
