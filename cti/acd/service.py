"""The live ACD of one server node: waiting callers meet agents, through Asterisk.

* Configuration (agents, queues) comes from the database (:mod:`cti.acd.store`); ``reload`` rebuilds the
  router from it and keeps every waiting caller in place.
* Agents' states live in the shared-state backend (:mod:`cti.acd.shared`): each node mirrors them into its
  router, and reserves an agent with an atomic compare-and-set before ringing it, so nodes sharing Redis
  never give one agent two calls. Logins and pause reasons are also saved in the database, so a restart
  finds agents as they were.
* Callers are held by this node's AGI sessions (:mod:`cti.scripts.queue`). A dispatcher task runs routing
  passes (on every change, and at least every ``TICK_S`` for relaxation steps and max waits). When a
  caller gets an agent, the holding session is woken by an AMI ``Redirect`` of the caller's channel back
  into the queue script, which then dials the agent (``Dial`` with music while it rings). Without AMI the
  holding session polls in short slices instead, so routing goes on, a little slower.
* Answer is seen from the AMI ``DialEnd`` event (or the dial status); ring-no-answer puts the caller back in
  its place and the next agent is tried (the one who missed goes to the back of the idle order, and is
  paused with reason ``no-answer`` after the queue's ``max_misses`` in a row); a caller hanging up frees the
  agent ringing for it. After a call the agent is in wrap-up for the queue's ``wrap_up_s``.
* A node that dies leaves its agents ringing or on a call: every node keeps a heartbeat, and agents whose
  node is gone are released once Asterisk confirms their call is over (:mod:`cti.acd.upkeep`, which also
  closes the call rows a dead process left open). Call steps are saved in the database too, so a node
  restarting on the in-process state finds an agent still talking as ``on_call``, not available.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from cti.acd.calls import CallPhase, QueuedCall
from cti.acd.config import AgentConfig, QueueConfig, agent_model, queue_spec
from cti.acd.ewt import EwtEstimator
from cti.acd.listeners import CallListener
from cti.acd.liveness import NodeHeartbeat
from cti.acd.model import CALL_STATES, AgentState, Decision, UnknownCall, UnknownQueue, WaitingCall
from cti.acd.open_rows import OpenRowSweeper
from cti.acd.policy import holds, requirement
from cti.acd.records import ended, update_call
from cti.acd.recovery import AgentRecovery, ChannelSource, Verdict
from cti.acd.routing import Router
from cti.acd.saved_states import SavedStates
from cti.acd.shared import CHANNEL, AgentBoard, AgentBusy, AgentStatus, statuses_by_state
from cti.acd.store import AcdStore, AgentNotFound
from cti.acd.upkeep import Upkeep
from cti.ami import AmiClient
from cti.ami.errors import AmiActionFailed, AmiError
from cti.channels import ChannelTracker
from cti.db import Database
from cti.db.base import utcnow
from cti.event_wait import wait_set
from cti.ivr.flow import EnqueueNode
from cti.state import StateBackend
from cti.state.errors import StateError

log = logging.getLogger(__name__)

TICK_S = 0.25  # routing pass at least this often: relaxation steps and max waits are time-driven
RESYNC_S = 30.0  # re-read every agent's shared status this often, whatever pub/sub delivered
ATTACH_TIMEOUT_S = 10.0  # a redirected caller not back in the queue script by then has hung up
RESUME_CONTEXT = "cti-queue-resume"  # extensions.conf: re-enters the queue script on the same channel
ANSWERED_STATUS = "ANSWER"
RETRY_MISSED_AFTER_S = 30.0  # an agent who let a call ring is offered that call again only after this
UNRESERVABLE_MAX_WAIT_S = 120.0  # a queue without max wait: the longest a caller waits while nobody can be reserved

Monotonic = Callable[[], float]


@dataclass
class QueueCounters:
    """Since this node started: what happened to the calls of one queue (live stats, not reports)."""

    offered: int = 0
    answered: int = 0
    answered_in_target: int = 0
    abandoned: int = 0
    overflowed: int = 0
    to_voicemail: int = 0
    wait_answered_s: float = 0.0
    talk_s: float = 0.0
    longest_wait_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        answered = self.answered
        finished = answered + self.abandoned
        return {
            "offered": self.offered, "answered": answered, "abandoned": self.abandoned,
            "overflowed": self.overflowed, "to_voicemail": self.to_voicemail,
            "service_level": None if not finished else round(self.answered_in_target / finished, 3),
            "abandon_rate": None if not finished else round(self.abandoned / finished, 3),
            "asa_s": None if not answered else round(self.wait_answered_s / answered, 1),
            "aht_s": None if not answered else round(self.talk_s / answered, 1),
        }  # fmt: skip


@dataclass
class DialPlan:
    """What the queue script needs to ring the agent chosen for its caller."""

    agent_id: str
    dial: str
    ring_timeout_s: int
    moh_class: str


@dataclass
class AcdService:
    store: AcdStore
    board: AgentBoard
    state: StateBackend
    db: Database
    ami: AmiClient | None = None
    node_id: str = ""
    monotonic: Monotonic = time.monotonic
    router: Router = field(default_factory=Router)
    queues: dict[str, QueueConfig] = field(default_factory=dict)
    agents: dict[str, AgentConfig] = field(default_factory=dict)
    statuses: dict[str, AgentStatus] = field(default_factory=dict)
    calls: dict[str, QueuedCall] = field(default_factory=dict)
    ewt: EwtEstimator = field(default_factory=EwtEstimator)
    counters: dict[str, QueueCounters] = field(default_factory=dict)
    decisions_log: list[dict[str, Any]] = field(default_factory=list)  # the last decisions, for the API
    listeners: list[CallListener] = field(default_factory=list)  # screen pops: ringing, answered, ended
    channels: ChannelSource | None = None  # Asterisk's live channels: only with them are orphan agents freed
    upkeep: Upkeep = field(init=False)
    saved: SavedStates = field(init=False)  # agents' states in the database (restarts)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _background: set[asyncio.Task[Any]] = field(default_factory=set)
    _last_resync: float = 0.0
    _unreservable_calls: set[str] = field(default_factory=set)  # warned once each while the state is down

    def __post_init__(self) -> None:
        self.node_id = self.node_id or f"{socket.gethostname()}-{os.getpid()}"
        self.saved = SavedStates(self.store)
        recovery = AgentRecovery(self.board, NodeHeartbeat(self.state, self.node_id, self.board.now), self.channels,
                                 self.db, self._holds, self._wrap_up_for, self._agent_step, self._recovered)
        rows = OpenRowSweeper(self.db, self.channels, lambda uniqueid: uniqueid in self.calls, self.monotonic)
        self.upkeep = Upkeep(recovery.nodes, recovery, rows, lambda: self.statuses, self.monotonic)

    # --- life cycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the configuration and the agents' states, then route in the background."""
        try:
            await self.reload()
            await self._seed_statuses()
        except Exception:  # the database or Redis may be down at start: the tasks retry
            log.exception("ACD: could not load its configuration at start; retrying in the background")
        if self.ami is not None:
            self.ami.on_event("DialEnd", self._on_dial_end)
            self.ami.on_event("Hangup", self._on_hangup)
        if isinstance(self.channels, ChannelTracker):
            self.channels.on_resync(self.upkeep.poke)
        self._tasks = [asyncio.create_task(self._dispatch_loop(), name="cti-acd-dispatch"),
                       asyncio.create_task(self._follow_board(), name="cti-acd-board"),
                       asyncio.create_task(self.upkeep.run(), name="cti-acd-upkeep")]

    async def stop(self) -> None:
        await self.saved.drain()  # agents' last states reach the database before the process goes
        for task in [*self._tasks, *self._background]:
            task.cancel()
        await asyncio.gather(*self._tasks, *self._background, return_exceptions=True)
        self._tasks.clear()
        await self.upkeep.heartbeat.stop()

    async def reload(self) -> None:
        """Rebuild routing from the stored configuration; waiting callers keep their place."""
        queues = {queue.name: queue for queue in await self.store.list_queues()}
        agents = {agent.id: agent for agent in await self.store.list_agents()}
        router = Router()
        for queue in queues.values():
            router.add_queue(queue_spec(queue))
        now = self.monotonic()
        before = {agent.id: agent for agent in self.router.agents()}
        for agent in agents.values():
            model = agent_model(agent)
            status = self.statuses.get(agent.id)
            if status is not None:
                old = before.get(agent.id)  # keep the idle order: a configuration change must not reset fairness
                model = replace(model, state=status.state, pause_reason=_reason(status),
                                state_since=old.state_since if old else now, idle_since=old.idle_since if old else now)
            router.add_agent(model)
        self.router, self.queues, self.agents = router, queues, agents
        for call in list(self.calls.values()):
            if call.phase is not CallPhase.WAITING:
                continue
            if call.queue in queues:
                router.add_call(self._waiting(call))
            else:
                log.warning("call %s: queue %r was deleted; the caller goes to voicemail", call.id, call.queue)
                await self._overflow(call, "voicemail")
        self._wake.set()

    async def _seed_statuses(self) -> None:
        """Agents logged in before a restart come back as they were (paused with their reason), unless
        another node holds a live status already. An agent saved ringing or on a call comes back so, owned
        by no node: the upkeep frees it once Asterisk says that call is over (it may still be talking: the
        bridge outlives the process that dialled it). Wrap-up is over after a restart."""
        saved = await self.store.load_statuses()
        for agent_id, row in saved.items():
            state, call, since = AgentState(row.state), "", self.board.now()
            if state in CALL_STATES and row.call:
                call, since = row.call, row.since.timestamp()
            elif state not in (AgentState.PAUSED, AgentState.LOGGED_OUT):
                state = AgentState.AVAILABLE
            status = AgentStatus(agent_id, state=state, reason=row.reason if state is AgentState.PAUSED else None,
                                 endpoint=row.endpoint, call=call, since=since)
            await self.board.seed(status)
        await self._resync()
        self.upkeep.poke()

    # --- agents -----------------------------------------------------------------------------------

    async def login(self, agent_id: str, endpoint: str | None = None) -> AgentStatus:
        agent = self._agent_config(agent_id)
        target = endpoint or agent.endpoint
        if not target:
            raise AgentBusy(f"agent {agent_id!r} has no phone: log in with an extension")
        return await self._agent_change(agent_id, self.board.login(target))

    async def pause(self, agent_id: str, reason: str) -> AgentStatus:
        self._agent_config(agent_id)
        return await self._agent_change(agent_id, self.board.pause(reason))

    async def resume(self, agent_id: str) -> AgentStatus:
        self._agent_config(agent_id)
        return await self._agent_change(agent_id, self.board.resume())

    async def logout(self, agent_id: str) -> AgentStatus:
        self._agent_config(agent_id)
        return await self._agent_change(agent_id, self.board.logout())

    async def end_wrap_up(self, agent_id: str) -> AgentStatus:
        self._agent_config(agent_id)
        return await self._agent_change(agent_id, self.board.wrap_up_over(""))

    async def _agent_change(self, agent_id: str, change: Callable[[AgentStatus], AgentStatus]) -> AgentStatus:
        status = await self.board.change(agent_id, change)
        self._apply(status)
        await self._save(status, wait=True)
        return status

    async def _save(self, status: AgentStatus, *, wait: bool = False) -> None:
        """Logins and pauses wait for the database (``wait``); call steps do not. A service that is not
        started (tests, tools) has no background to leave a write to: it waits."""
        await self.saved.save(status, wait=wait or not self._tasks)

    def _agent_config(self, agent_id: str) -> AgentConfig:
        agent = self.agents.get(agent_id)
        if agent is None:
            raise AgentNotFound(f"no agent {agent_id!r}")
        return agent

    # --- calls: joining and leaving -----------------------------------------------------------------

    @property
    def wakes_by_redirect(self) -> bool:
        """Whether a holding session will be interrupted by a Redirect; if not, it must poll in short slices."""
        return self.ami is not None and self.ami.connected

    def queue(self, name: str) -> QueueConfig | None:
        return self.queues.get(name)

    def call_for(self, uniqueid: str) -> QueuedCall | None:
        return self.calls.get(uniqueid)

    async def enqueue(self, call: QueuedCall) -> QueuedCall:
        """A caller joins ``call.queue`` (UnknownQueue if there is none)."""
        queue = self.queues.get(call.queue)
        if queue is None:
            raise UnknownQueue(f"no queue {call.queue!r}")
        self.router.add_call(self._waiting(call))
        self.calls[call.id] = call
        self._counters(call.queue).offered += 1
        call.path.append(f"queue:{call.queue}")
        self._wake.set()
        await self._record(call, queue=call.queue, enqueued_at=call.joined)
        return call

    def forget(self, call: QueuedCall) -> None:
        """The caller has left the ACD for good (its session sent it to voicemail after an overflow)."""
        if self.calls.get(call.id) is call:
            del self.calls[call.id]

    def attach(self, call: QueuedCall, session: object) -> None:
        """A (new) AGI session holds the caller: after a Redirect, the old session's hang-up is not the caller's."""
        call.owner = session
        call.redirected = False
        if call.attach_timer is not None:
            call.attach_timer.cancel()
            call.attach_timer = None

    async def caller_left(self, call: QueuedCall, reason: str = "abandoned") -> None:
        """The caller hung up (``abandoned``) or chose voicemail (``to_voicemail``) before an answer."""
        if call.phase is CallPhase.LEFT:
            return
        if call.phase is CallPhase.OVERFLOW:  # hung up before its session took it to voicemail
            self.forget(call)
            call.phase = CallPhase.LEFT
            await self._record(call, **ended("abandoned"))
            return
        if call.phase is CallPhase.ANSWERED:
            await self.dial_ended(call, ANSWERED_STATUS)
            return
        self._unroute(call)
        ringing = call.agent_id if call.phase in (CallPhase.ASSIGNED, CallPhase.DIALING) else None
        if ringing is not None:
            await self._agent_step(ringing, self.board.released(call.id))
        self._notify("caller_left", call, ringing, reason)
        counters = self._counters(call.queue)
        if reason == "abandoned":
            counters.abandoned += 1
        else:
            counters.to_voicemail += 1
        now = self.monotonic()
        call.path.append(f"{reason}({round(call.waited(now))}s)")
        call.phase = CallPhase.LEFT
        self.calls.pop(call.id, None)
        values = {"wait_s": round(call.waited(now), 1)}
        await self._record(call, **(ended("abandoned", **values) if reason == "abandoned" else values))

    # --- calls: connecting to the agent --------------------------------------------------------------

    def start_dialing(self, call: QueuedCall) -> DialPlan:
        """The holding session takes the assignment and dials; only once per assignment."""
        if call.phase is not CallPhase.ASSIGNED or call.agent_id is None:
            raise UnknownCall(f"call {call.id} has no agent to dial")
        queue = self.queues.get(call.queue) or QueueConfig(name=call.queue)  # deleted meanwhile: defaults
        call.phase = CallPhase.DIALING
        return DialPlan(call.agent_id, call.dial, queue.ring_timeout_s, queue.moh_class)

    async def answered(self, call: QueuedCall) -> None:
        """The agent picked up (AMI DialEnd, or the dial status when AMI missed it)."""
        if call.phase is not CallPhase.DIALING or call.agent_id is None:
            return
        now = self.monotonic()
        call.phase, call.answered_at = CallPhase.ANSWERED, now
        waited = call.waited(now)
        queue = self.queues.get(call.queue)
        counters = self._counters(call.queue)
        counters.answered += 1
        counters.wait_answered_s += waited
        counters.longest_wait_s = max(counters.longest_wait_s, waited)
        if queue is not None and waited <= queue.service_level_s:
            counters.answered_in_target += 1
        self.ewt.record_answered(call.queue, waited, now)
        call.path.append(f"agent:{call.agent_id}:answered({round(waited)}s)")
        await self._agent_step(call.agent_id, self.board.answered(call.id))
        self._notify("answered", call, call.agent_id)
        await self._record(call, agent_id=call.agent_id, answered_at=utcnow(), wait_s=round(waited, 1))

    async def dial_ended(self, call: QueuedCall, status: str | None) -> bool:
        """The Dial returned (``status`` = DIALSTATUS, None when the caller's channel is gone).

        Returns True when the call is over (answered and finished, or abandoned), False when the caller
        is back in its place in the queue (the agent did not answer).
        """
        agent_id = call.agent_id
        if status == ANSWERED_STATUS and call.phase is CallPhase.DIALING:
            await self.answered(call)
        if call.phase is CallPhase.ANSWERED and agent_id is not None:
            await self._finished(call, agent_id)
            return True
        if status is None or agent_id is None:
            await self.caller_left(call)
            return True
        await self._missed(call, agent_id, status)
        return False

    async def _finished(self, call: QueuedCall, agent_id: str) -> None:
        now = self.monotonic()
        talk = max(0.0, now - (call.answered_at or now))
        queue = self.queues.get(call.queue)
        wrap_up = queue.wrap_up_s if queue is not None else 0
        counters = self._counters(call.queue)
        counters.talk_s += talk
        self.ewt.record_handled(call.queue, talk + wrap_up)
        call.phase = CallPhase.LEFT
        self.calls.pop(call.id, None)
        await self._agent_step(agent_id, self.board.finished(call.id, wrap_up))
        self._notify("ended", call, agent_id, talk)
        await self._record(call, **ended("answered", talk_s=round(talk, 1)))

    async def _missed(self, call: QueuedCall, agent_id: str, status: str) -> None:
        """Ring-no-answer (or busy, unreachable): the caller keeps its place; the agent may be auto-paused."""
        queue = self.queues.get(call.queue)
        max_misses = queue.max_misses if queue is not None else 3
        after = await self._agent_step(agent_id, self.board.missed(call.id, max_misses))
        paused = after is not None and after.state is AgentState.PAUSED
        self._notify("not_answered", call, agent_id, status)
        call.path.append(f"agent:{agent_id}:{status.lower()}" + (":paused" if paused else ""))
        log.info("call %s: agent %s did not answer (%s)%s; the caller keeps its place", call.id, agent_id,
                 status, ", agent paused" if paused else "")
        if call.preferred_agent == agent_id:
            call.preferred_agent = None
        call.missed_by[agent_id] = self.monotonic() + RETRY_MISSED_AFTER_S
        call.phase, call.agent_id, call.dial = CallPhase.WAITING, None, ""
        if call.queue in self.queues:
            self.router.add_call(self._waiting(call))
            self._wake.set()
            asyncio.get_running_loop().call_later(RETRY_MISSED_AFTER_S, self._lift_exclusions, call)
        else:
            await self._overflow(call, "voicemail")

    async def _agent_step(self, agent_id: str, change: Callable[[AgentStatus], AgentStatus]) -> AgentStatus | None:
        """A call-driven agent change; the shared state may be down, which must not break the caller's call."""
        try:
            status = await self.board.change(agent_id, change)
        except (StateError, AgentBusy):
            log.exception("agent %s: could not record a call step", agent_id)
            return None
        self._apply(status)
        # an automatic pause ("no-answer") must survive a restart; the call steps let a restart see live calls
        await self._save(status, wait=status.state is AgentState.PAUSED)
        return status

    def _holds(self, status: AgentStatus) -> bool:
        """Whether this node holds the agent's call now (then it ends it itself: no recovery)."""
        call = self.calls.get(status.call)
        return (status.node == self.node_id and call is not None and call.agent_id == status.agent_id
                and call.phase in (CallPhase.ASSIGNED, CallPhase.DIALING, CallPhase.ANSWERED))

    def _wrap_up_for(self, queue: str | None) -> float:
        config = self.queues.get(queue or "") or QueueConfig(name="default")
        return config.wrap_up_s

    # --- routing ---------------------------------------------------------------------------------------

    async def _dispatch_loop(self) -> None:
        while True:
            await wait_set(self._wake, TICK_S)
            self._wake.clear()
            try:
                await self._pass()
            except Exception:
                log.exception("ACD routing pass failed; retrying")
                await asyncio.sleep(1.0)

    async def _pass(self) -> None:
        now = self.monotonic()
        if now - self._last_resync > RESYNC_S:
            self._last_resync = now
            with contextlib.suppress(StateError):  # the state is down: route on what this node knows (max waits)
                await self._resync()
        await self._end_wrap_ups()
        for decision in self.router.next_assignments(now):
            call = self.calls.get(decision.call_id)
            if call is None:
                continue
            self._remember(decision)
            if decision.agent_id is None:
                await self._overflow(call, decision.overflow_target or "voicemail")
            else:
                await self._offer(call, decision)

    async def _offer(self, call: QueuedCall, decision: Decision) -> None:
        agent_id = decision.agent_id or ""
        try:
            status = await self.board.change(agent_id, self.board.reserve(call.id, self.node_id))
        except AgentBusy:  # another node took the agent first: follow its state, try again
            self._apply(await self.board.get(agent_id))
            self._requeue(call)
            return
        except StateError:
            await self._unreservable(call, agent_id)
            return
        self._unreservable_calls.discard(call.id)
        self._apply(status)
        await self._save(status)
        agent = self.agents.get(agent_id)
        call.phase, call.agent_id = CallPhase.ASSIGNED, agent_id
        call.dial = status.endpoint or (agent.endpoint if agent is not None else "")
        call.rule, call.explanation = decision.rule.value, decision.explanation.summary
        log.info("call %s (%s): %s", call.id, call.queue, decision.explanation.summary)
        self._notify("ringing", call, agent_id)
        await self._wake_holder(call)

    def _lift_exclusions(self, call: QueuedCall) -> None:
        """The agents who missed the call may be offered it again: the call re-enters routing in its place."""
        if call.phase is not CallPhase.WAITING or self.calls.get(call.id) is not call:
            return
        self._unroute(call)
        self.router.add_call(self._waiting(call))
        self._wake.set()

    def _requeue(self, call: QueuedCall) -> None:
        """Back in the router (which forgot the call when it chose the agent), same priority and arrival."""
        self.router.add_call(self._waiting(call))
        self._wake.set()

    async def _unreservable(self, call: QueuedCall, agent_id: str) -> None:
        """The shared state is down: nobody can be reserved. The caller keeps its place and is tried again at
        the next tick (not at once: that would spin), until the queue's max wait (``UNRESERVABLE_MAX_WAIT_S``
        without one) sends it to the overflow: routing chooses an agent before it looks at max waits."""
        queue = self.queues.get(call.queue)
        limit = (queue.max_wait_s if queue is not None else None) or UNRESERVABLE_MAX_WAIT_S
        if call.id not in self._unreservable_calls:
            self._unreservable_calls.add(call.id)
            log.warning("call %s: shared state unavailable, cannot reserve agent %s; retrying until %.0f s of wait",
                        call.id, agent_id, limit)
        known = self.statuses.get(agent_id)
        if known is not None:
            self._apply(known, force=True)  # routing left the agent ringing
        self._wake.clear()  # ... which woke the dispatcher: it waits for the next tick instead
        if call.waited(self.monotonic()) >= limit:
            self._unreservable_calls.discard(call.id)
            await self._overflow(call, queue.overflow if queue is not None else "voicemail")
            return
        self.router.add_call(self._waiting(call))

    async def _overflow(self, call: QueuedCall, target: str) -> None:
        """Max wait reached: another queue (keeping the caller's priority), or voicemail."""
        counters = self._counters(call.queue)
        counters.overflowed += 1
        call.path.append(f"overflow:{target}")
        next_queue = target.removeprefix("queue:") if target.startswith("queue:") else None
        if next_queue is not None and next_queue in self.queues:
            log.info("call %s: overflows from %s to queue %s", call.id, call.queue, next_queue)
            now = self.monotonic()
            call.waited_before = call.waited(now)
            # the new queue's own skills apply (the IVR's were for the first one); routing there starts now
            call.queue, call.arrived_at, call.skills = next_queue, now, None
            self.router.add_call(self._waiting(call))
            self._counters(next_queue).offered += 1
            self._wake.set()
            await self._record(call, queue=next_queue)
            return
        log.info("call %s: overflows from %s to voicemail", call.id, call.queue)
        call.phase, call.overflow_target = CallPhase.OVERFLOW, "voicemail"  # forgotten once its session acts
        await self._record(call, wait_s=round(call.waited(self.monotonic()), 1))
        await self._wake_holder(call)

    async def _wake_holder(self, call: QueuedCall) -> None:
        """Interrupt the caller's music so its session acts now (AMI Redirect); without AMI it polls."""
        ami = self.ami
        if ami is None or not ami.connected:
            return
        call.redirected = True
        try:
            await ami.send_action({"Action": "Redirect", "Channel": call.channel, "Context": RESUME_CONTEXT,
                                        "Exten": "s", "Priority": "1"})
        except AmiActionFailed:  # no such channel: the caller has just hung up
            call.redirected = False
            await self.caller_left(call)
            return
        except AmiError:
            call.redirected = False  # the holding session will see the change when its slice ends
            return
        loop = asyncio.get_running_loop()
        call.attach_timer = loop.call_later(ATTACH_TIMEOUT_S, lambda: self._spawn(self._attach_expired(call)))

    async def _attach_expired(self, call: QueuedCall) -> None:
        call.attach_timer = None
        if call.redirected and call.phase is CallPhase.OVERFLOW:
            self.forget(call)
        elif call.redirected and call.phase is not CallPhase.LEFT:
            log.warning("call %s: not back in the queue script after the redirect; counted as abandoned", call.id)
            call.redirected = False
            await self.caller_left(call)

    def _notify(self, hook: str, call: QueuedCall, *args: Any) -> None:
        """Tell every listener in the background (:mod:`cti.acd.listeners`): callers never wait for a pop."""
        if not self.listeners:
            return
        # the call as it is now: the listeners run later, by when the ACD may have moved it on
        now = replace(call, path=list(call.path), missed_by=dict(call.missed_by), attach_timer=None)
        for listener in self.listeners:
            self._spawn(_guarded(getattr(listener, hook)(now, *args), hook, call.id))

    def _recovered(self, call_id: str, agent_id: str, outcome: Verdict) -> None:
        """A dead node's call settled by the recovery: the listeners hear it, in the background too."""
        for listener in self.listeners:
            self._spawn(_guarded(listener.recovered(call_id, agent_id, outcome), "recovered", call_id))

    def _spawn(self, work: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # --- agents' shared states ----------------------------------------------------------------------

    def _apply(self, status: AgentStatus, *, force: bool = False) -> None:
        """Mirror a shared status into this node's router."""
        self.statuses[status.agent_id] = status
        if status.agent_id not in self.agents:
            return
        current = self.router.agent(status.agent_id)
        if force or current.state is not status.state or current.pause_reason != _reason(status):
            self.router.set_state(status.agent_id, status.state, self.monotonic(), reason=_reason(status))
            self._wake.set()

    async def _resync(self) -> None:
        """Re-read every agent's shared status; the periodic pass counts from the last one, whoever asked."""
        snapshot = await self.board.snapshot()
        self._last_resync = self.monotonic()
        for agent_id in self.agents:
            self._apply(snapshot.get(agent_id, AgentStatus(agent_id)))

    async def _follow_board(self) -> None:
        """Other nodes' changes arrive on the board's channel; after an outage everything is re-read."""
        subscription = None
        while True:
            try:
                if subscription is None:
                    subscription = await self.state.subscribe(CHANNEL)
                    await self._resync()
                async for _, message in subscription:
                    self._apply(AgentStatus.decode(message))
                return
            except StateError as exc:
                log.warning("ACD: agent state feed interrupted (%s); re-reading once it is back", exc)
                await self._reseed_when_back()
            except Exception:
                log.exception("ACD: agent state feed failed; restarting it")
                await asyncio.sleep(1.0)

    async def _reseed_when_back(self) -> None:
        """A Redis that was restarted comes back empty: the agents are seeded again from the database (a live
        status another node wrote meanwhile wins), then re-read; without the database, only re-read."""
        while True:
            await asyncio.sleep(1.0)
            try:
                await self._seed_statuses()
            except StateError:
                continue
            except Exception:
                log.exception("ACD: agents' saved states unreadable after the outage; re-reading the shared state")
                with contextlib.suppress(StateError):
                    await self._resync()
            log.info("ACD: agent states re-read after the shared state's outage")
            return

    async def _end_wrap_ups(self) -> None:
        """Wrap-ups past their end end here (any node); agents of dead nodes are the upkeep's."""
        now = self.board.now()
        for status in list(self.statuses.values()):
            if status.state is AgentState.WRAP_UP and status.until <= now:
                await self._agent_step(status.agent_id, self.board.wrap_up_over(status.call))

    def _on_hangup(self, event: Any) -> None:
        """The caller of an agent left by a gone node hung up: check that agent now, not at the next beat."""
        uniqueid = str(event.get("Uniqueid", ""))
        if any(status.call == uniqueid and status.state in CALL_STATES
               and not self._holds(status) for status in self.statuses.values()):
            self.upkeep.poke()

    def _on_dial_end(self, event: Any) -> Awaitable[None] | None:
        if event.get("DialStatus") != ANSWERED_STATUS:
            return None
        call = self.calls.get(str(event.get("Uniqueid", "")))
        if call is None or call.phase is not CallPhase.DIALING:
            return None
        return self.answered(call)

    # --- figures ------------------------------------------------------------------------------------

    def position(self, call: QueuedCall) -> int | None:
        """1 = next to be answered among the callers of its queue on this node; None once out of the queue."""
        return self._positions().get(call.id) if call.phase is CallPhase.WAITING else None

    def _positions(self) -> dict[str, int]:
        """Every routed call's place in its queue, from one walk of the routing order."""
        last: dict[str, int] = {}
        positions: dict[str, int] = {}
        for waiting in self.router.calls():
            last[waiting.queue] = positions[waiting.id] = last.get(waiting.queue, 0) + 1
        return positions

    def estimate(self, call: QueuedCall, position: int | None = None) -> float | None:
        """The caller's remaining wait; pass ``position`` when it is already known."""
        if call.phase is not CallPhase.WAITING:
            return 0.0
        position = position or self.position(call)
        if position is None:
            return None
        busy, available = self._eligible(call.queue, call.skills)
        return self.ewt.estimate_for_position(call.queue, position, busy + available, self.monotonic(),
                                              available_agents=available)

    async def wait_estimate(self, queue: str) -> float | None:
        """For the IVR's wait-band messages: the wait of a caller joining ``queue`` now."""
        if queue not in self.queues:
            return None
        return self._queue_estimate(queue, len(self._waiting_in(queue)), self.monotonic())

    def _queue_estimate(self, queue: str, waiting: int, now: float) -> float | None:
        busy, available = self._eligible(queue, None)
        return self.ewt.estimate_queue(queue, now, waiting_ahead=waiting, eligible_agents_busy=busy,
                                       eligible_agents_available=available)

    def _waiting_in(self, queue: str) -> list[QueuedCall]:
        return [call for call in self.calls.values() if call.queue == queue and call.phase is CallPhase.WAITING]

    async def queue_check(self, node: EnqueueNode) -> bool:
        """The IVR may enqueue when the queue exists and some logged-in agent (even paused) has its skills."""
        queue = self.queues.get(node.queue)
        if queue is None:
            return False
        needed = requirement(node.skills or queue.skills)
        return any(self._state_of(agent.id) is not AgentState.LOGGED_OUT and holds(agent.skills, needed)
                   for agent in self.agents.values())

    def _eligible(self, queue_name: str, skills: dict[str, int] | None) -> tuple[int, int]:
        """(busy, available) agents holding the queue's (or the call's) base skills."""
        queue = self.queues.get(queue_name)
        if queue is None:
            return 0, 0
        needed = requirement(skills or queue.skills)
        busy = available = 0
        for agent in self.agents.values():
            state = self._state_of(agent.id)
            if state in (AgentState.LOGGED_OUT, AgentState.PAUSED) or not holds(agent.skills, needed):
                continue
            if state is AgentState.AVAILABLE:
                available += 1
            else:
                busy += 1
        return busy, available

    def _state_of(self, agent_id: str) -> AgentState:
        status = self.statuses.get(agent_id)
        return AgentState.LOGGED_OUT if status is None else status.state

    def waiting_calls(self) -> list[dict[str, Any]]:
        now = self.monotonic()
        positions = self._positions()
        rows = []
        for call in self.calls.values():
            position = positions.get(call.id) if call.phase is CallPhase.WAITING else None
            rows.append(call.as_dict(now, position, self.estimate(call, position)))
        return rows

    def agent_states(self) -> list[dict[str, Any]]:
        now = self.board.now()
        rows = []
        for agent in self.agents.values():
            status = self.statuses.get(agent.id, AgentStatus(agent.id))
            rows.append({"id": agent.id, "name": agent.name, "team": agent.team, "state": status.state.value,
                         "reason": status.reason, "endpoint": status.endpoint, "call": status.call or None,
                         "since_s": round(max(0.0, now - status.since)) if status.since else None,
                         "misses": status.misses})
        return rows

    def stats(self) -> dict[str, Any]:
        now = self.monotonic()
        queues = {}
        for name in self.queues:
            waiting = self._waiting_in(name)
            queues[name] = {
                **self._counters(name).as_dict(), "waiting": len(waiting),
                "longest_waiting_s": round(max((call.waited(now) for call in waiting), default=0.0), 1),
                "estimated_wait_s": _rounded(self._queue_estimate(name, len(waiting), now)),
            }  # fmt: skip
        return {"node": self.node_id, "queues": queues, "agents": statuses_by_state(
            {agent_id: self.statuses.get(agent_id, AgentStatus(agent_id)) for agent_id in self.agents})}

    def explain(self, call_id: str) -> dict[str, Any]:
        call = self.calls.get(call_id)
        if call is None:
            raise UnknownCall(f"no call {call_id!r} in the queues of this node")
        if call.phase is not CallPhase.WAITING:
            return {"call_id": call.id, "phase": call.phase.value, "agent_id": call.agent_id, "rule": call.rule,
                    "explanation": call.explanation}
        return _decision_dict(self.router.explain(call_id, self.monotonic()))

    def _remember(self, decision: Decision) -> None:
        self.decisions_log.append(_decision_dict(decision))
        del self.decisions_log[:-200]

    # --- helpers ------------------------------------------------------------------------------------

    def _waiting(self, call: QueuedCall) -> WaitingCall:
        queue = self.queues[call.queue]
        preferred = call.preferred_agent if call.preferred_agent in self.agents else None
        now = self.monotonic()
        excluded = frozenset(agent for agent, until in call.missed_by.items() if until > now)
        return WaitingCall(call.id, call.queue, call.priority, call.arrived_at, skills=call.skills or None,
                           preferred_agent=preferred, preferred_window_s=queue.preferred_window_s, excluded=excluded)

    def _unroute(self, call: QueuedCall) -> None:
        with contextlib.suppress(UnknownCall):
            self.router.remove_call(call.id)

    async def _record(self, call: QueuedCall, **values: Any) -> None:
        """Write ``values`` and the path steps not yet written to the call's row."""
        steps, call.written = call.path[call.written:], len(call.path)
        await update_call(self.db, call.id, path=steps, **values)

    def _counters(self, queue: str) -> QueueCounters:
        return self.counters.setdefault(queue, QueueCounters())


async def _guarded(work: Awaitable[None], hook: str, call_id: str) -> None:
    try:
        await work
    except Exception:
        log.exception("call %s: a listener failed on %s", call_id, hook)


def _reason(status: AgentStatus) -> str | None:
    return (status.reason or "paused") if status.state is AgentState.PAUSED else None


def _rounded(value: float | None) -> int | None:
    return None if value is None else round(value)


def _decision_dict(decision: Decision) -> dict[str, Any]:
    return {
        "call_id": decision.call_id, "queue": decision.queue, "agent_id": decision.agent_id,
        "rule": decision.rule.value, "step": decision.step, "score": decision.score,
        "waited_s": round(decision.waited_s, 1), "overflow_target": decision.overflow_target,
        "explanation": decision.explanation.summary, "preferred": decision.explanation.preferred,
        "pools": [{"queue": report.pool.queue, "skills": dict(report.pool.requirement),
                   "skipped": dict(report.skipped), "examples": {k: list(v) for k, v in report.examples.items()}}
                  for report in decision.explanation.pools],
    }  # fmt: skip

