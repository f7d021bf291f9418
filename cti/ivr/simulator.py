"""Runs a flow without a call: given the keys a caller would press, what they would hear and where
the call would end. The supervision screen uses it to try a flow before saving it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

from cti.ivr.engine import CallFacts, FlowRun, Outcome, QueueCheck, WaitEstimate, no_acd, no_estimate
from cti.ivr.flow import Flow

NO_INPUT = ""


@dataclass(frozen=True)
class Step:
    """One thing the caller hears or does; ``key`` is "" for a silence (no key before the timeout)."""

    action: Literal["play", "read", "say_datetime", "language"]
    prompt: str = ""
    language: str = ""
    key: str | None = None
    when: str = ""


@dataclass
class ScriptedCaller:
    """A CallIO that records what is played and answers menus from a list of keys, then silence."""

    keys: list[str]
    steps: list[Step] = field(default_factory=list)

    async def set_language(self, language: str) -> None:
        self.steps.append(Step("language", language=language))

    async def play(self, prompt: str, language: str) -> None:
        self.steps.append(Step("play", prompt=prompt, language=language))

    async def read_key(self, prompt: str, language: str, timeout_s: int) -> str:
        key = self.keys.pop(0) if self.keys else NO_INPUT
        self.steps.append(Step("read", prompt=prompt, language=language, key=key))
        return key

    async def say_datetime(self, when: datetime, language: str) -> None:
        self.steps.append(Step("say_datetime", language=language, when=when.isoformat()))


@dataclass(frozen=True)
class Simulation:
    steps: list[Step]
    outcome: Outcome
    path: list[str]
    language: str
    unused_keys: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {"steps": [asdict(step) for step in self.steps], "outcome": asdict(self.outcome),
                "path": self.path, "language": self.language, "unused_keys": self.unused_keys}


def parse_keys(keys: str | Sequence[str]) -> list[str]:
    """"1,,2" or ["1", "", "2"]: one entry per menu, an empty entry is a silence."""
    entries = keys.split(",") if isinstance(keys, str) else list(keys)
    return [entry.strip() for entry in entries] if any(entry.strip() for entry in entries) else []


async def simulate(flow: Flow, facts: CallFacts, language: str, keys: Sequence[str], *,
                   wait_estimate: WaitEstimate = no_estimate, queue_check: QueueCheck = no_acd) -> Simulation:
    caller = ScriptedCaller(list(keys))
    run = FlowRun(flow, facts, caller, language, wait_estimate=wait_estimate, queue_check=queue_check)
    outcome = await run.run()
    return Simulation(caller.steps, outcome, run.path, run.language, caller.keys)
