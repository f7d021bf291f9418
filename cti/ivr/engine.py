"""Walks a validated flow for one call and returns where the call goes next.

The same walk serves a real call (:mod:`cti.ivr.agi_io` plays through Asterisk) and the simulator
(:mod:`cti.ivr.simulator` records what would be played): only the :class:`CallIO` differs, so what the
supervisor simulates is exactly what a caller hears.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from cti.contacts.profile import CallerProfile
from cti.errors import CtiError
from cti.ivr.flow import (
    CallerNode,
    Condition,
    EnqueueNode,
    Flow,
    HangupNode,
    HoursNode,
    LanguageNode,
    MenuNode,
    PlayNode,
    TransferNode,
    VoicemailNode,
)
from cti.ivr.schedule import ScheduleState

NEXT_OPENING_PROMPT = "next-opening"
MAX_STEPS = 200  # a validated flow waits for the caller in every loop; this bounds a caller who keeps pressing


class FlowRunError(CtiError):
    code = "ivr.flow_run"


class CallIO(Protocol):
    """What a flow does to a call; each method may raise AgiHangup when the caller hangs up."""

    async def set_language(self, language: str) -> None: ...

    async def play(self, prompt: str, language: str) -> None: ...

    async def read_key(self, prompt: str, language: str, timeout_s: int) -> str:
        """Plays ``prompt`` and returns the key pressed during or after it, or "" after ``timeout_s``."""
        ...

    async def say_datetime(self, when: datetime, language: str) -> None: ...


WaitEstimate = Callable[[str], Awaitable[float | None]]
"""Estimated wait in seconds for a queue, None when unknown (no ACD, no history)."""
QueueCheck = Callable[[EnqueueNode], Awaitable[bool]]
"""Whether the ACD can take a caller for this node now; False sends the call to the node's overflow."""


async def no_estimate(queue: str) -> float | None:
    return None


async def no_acd(node: EnqueueNode) -> bool:
    return False


@dataclass(frozen=True)
class CallFacts:
    """What is known about the call before the flow starts; ``hours`` is None for a service without hours."""

    called_number: str
    caller: CallerProfile
    instant: datetime
    hours: ScheduleState | None
    next_opening: datetime | None


@dataclass(frozen=True)
class Outcome:
    """Where the call goes when the flow is done."""

    kind: Literal["enqueue", "voicemail", "transfer", "hangup"]
    queue: str = ""
    skills: dict[str, int] = field(default_factory=dict)
    priority: int = 0
    reason: str = ""
    number: str = ""


@dataclass
class FlowRun:
    flow: Flow
    facts: CallFacts
    io: CallIO
    language: str
    wait_estimate: WaitEstimate = no_estimate
    queue_check: QueueCheck = no_acd
    path: list[str] = field(default_factory=list)

    async def run(self) -> Outcome:
        node_id = self.flow.start
        for _ in range(MAX_STEPS):
            step = await self._visit(node_id)
            if isinstance(step, Outcome):
                return step
            node_id = step
        raise FlowRunError(f"the flow took more than {MAX_STEPS} steps; last node {node_id!r}")

    async def _visit(self, node_id: str) -> str | Outcome:
        node = self.flow.nodes[node_id]
        match node:
            case PlayNode():
                return await self._play_node(node_id, node)
            case MenuNode():
                return await self._menu(node_id, node)
            case LanguageNode():
                return await self._choose_language(node_id, node)
            case HoursNode():
                return self._hours(node_id, node)
            case CallerNode():
                return await self._caller(node_id, node)
            case EnqueueNode():
                return await self._enqueue(node_id, node)
        return await self._ending(node_id, node)

    async def _play_node(self, node_id: str, node: PlayNode) -> str:
        prompts = node.prompts
        for variant in node.variants:
            if await self.holds(variant.when):
                prompts = variant.prompts
                break
        self.path.append(node_id)
        await self._play_all(prompts)
        if node.say_next_opening and self.facts.next_opening is not None:
            await self.io.play(NEXT_OPENING_PROMPT, self.language)
            await self.io.say_datetime(self.facts.next_opening, self.language)
        return node.next

    async def _menu(self, node_id: str, node: MenuNode) -> str:
        for _ in range(node.max_retries + 1):
            key = await self.io.read_key(node.prompt, self.language, node.timeout_s)
            if key in node.options:
                self.path.append(f"{node_id}:{key}")
                return node.options[key]
            self.path.append(f"{node_id}:invalid({key})" if key else f"{node_id}:no-input")
            retry_prompt = node.invalid_prompt if key else node.no_input_prompt
            if retry_prompt:
                await self.io.play(retry_prompt, self.language)
        return node.on_failure

    async def _choose_language(self, node_id: str, node: LanguageNode) -> str:
        for _ in range(node.max_retries + 1):
            key = await self.io.read_key(node.prompt, self.language, node.timeout_s)
            if key in node.options:
                self.language = node.options[key]
                self.path.append(f"{node_id}:{self.language}")
                await self.io.set_language(self.language)
                return node.next
        self.path.append(f"{node_id}:default")
        return node.next

    def _hours(self, node_id: str, node: HoursNode) -> str:
        state = self.hours_state()
        target = {"open": node.open, "closed": node.closed, "holiday": node.holiday or node.closed,
                  "override_open": node.override_open or node.open,
                  "override_closed": node.override_closed or node.closed}[state]
        self.path.append(f"{node_id}:{state}")
        return target

    async def _caller(self, node_id: str, node: CallerNode) -> str:
        for index, rule in enumerate(node.rules, start=1):
            if await self.holds(rule.when):
                self.path.append(f"{node_id}:rule{index}")
                return rule.next
        self.path.append(f"{node_id}:default")
        return node.default

    async def _enqueue(self, node_id: str, node: EnqueueNode) -> str | Outcome:
        if not await self.queue_check(node):
            self.path.append(f"{node_id}:overflow")
            return node.overflow
        self.path.append(node_id)
        return Outcome("enqueue", queue=node.queue, skills=dict(node.skills), priority=node.priority)

    async def _ending(self, node_id: str, node: object) -> Outcome:
        self.path.append(node_id)
        if isinstance(node, TransferNode | HangupNode):
            await self._play_all(node.prompts)
        outcome = ending_outcome(node)
        if outcome is None:
            raise FlowRunError(f"node {node_id!r}: unknown node type {type(node).__name__}")
        return outcome

    async def _play_all(self, prompts: list[str]) -> None:
        for prompt in prompts:
            await self.io.play(prompt, self.language)

    def hours_state(self) -> str:
        return "open" if self.facts.hours is None else self.facts.hours.status.value

    async def holds(self, condition: Condition) -> bool:
        """Every field given must hold; values inside one field are alternatives."""
        if not matches(condition, self.facts.caller, self.language, self.hours_state()):
            return False
        if condition.wait is None:
            return True
        estimate = await self.wait_estimate(condition.wait.queue)
        if estimate is None:
            return False
        return condition.wait.min_s <= estimate and (condition.wait.max_s is None or estimate < condition.wait.max_s)


def ending_outcome(node: object) -> Outcome | None:
    """Where a voicemail, transfer or hang-up node sends the call; None for any other node."""
    match node:
        case VoicemailNode():
            return Outcome("voicemail", reason=node.reason)
        case TransferNode():
            return Outcome("transfer", number=node.number)
        case HangupNode():
            return Outcome("hangup")
    return None


def matches(condition: Condition, caller: CallerProfile, language: str, hours_state: str) -> bool:
    """The conditions known without asking anyone (all but the wait estimate)."""
    return all((
        not condition.hours or hours_state in condition.hours,
        not condition.caller or bool(caller.classes() & set(condition.caller)),
        not condition.contract or caller.contract_level in condition.contract,
        not condition.number_prefix or any(caller.number.startswith(p) for p in condition.number_prefix),
        not condition.language or language in condition.language,
    ))
