"""The IVR's logic around the database: validate-then-save flows and hours, and prepare a call.

A call asks :meth:`IvrService.prepare` for everything its flow needs (parsed flow, schedule state at
the call's instant, next opening, the caller's profile) in one place, so a real call and a simulated
one are prepared the same way. The clock is injected: tests and the simulator choose the instant.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from cti.contacts.directory import CallerDirectory
from cti.db import Database
from cti.db.base import utcnow
from cti.db.models import ServiceNumber
from cti.ivr.default_flow import DEFAULT_FLOW
from cti.ivr.engine import CallFacts, QueueCheck, WaitEstimate, no_acd, no_estimate
from cti.ivr.errors import ServiceNotFound
from cti.ivr.flow import Flow, dump_flow, parse_flow
from cti.ivr.schedule import (
    OpeningHours,
    Override,
    ScheduleError,
    ScheduleState,
    active_override,
    next_closing,
    next_opening,
    state_at,
)
from cti.ivr.schedule_parse import dump_opening_hours, parse_opening_hours, validate_override
from cti.ivr.simulator import Simulation, simulate
from cti.ivr.store import StoredService, load_service, require_service, write_flow, write_hours, write_override
from cti.ivr.validate import validate_flow
from cti.prompts import LANGUAGES, PromptStore, load_catalog
from cti.settings import Settings

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class PreparedCall:
    """A service's flow and the facts of one call to it, ready for :class:`cti.ivr.engine.FlowRun`."""

    service: ServiceNumber | None  # None only when the database is down and the default flow runs
    flow: Flow
    facts: CallFacts
    language: str


@dataclass
class IvrService:
    db: Database
    prompts: PromptStore
    directory: CallerDirectory
    clock: Clock = utcnow
    wait_estimate: WaitEstimate = no_estimate
    queue_check: QueueCheck = no_acd
    _flows: dict[tuple[int, int], Flow] = dataclasses.field(default_factory=dict)

    # --- calls -----------------------------------------------------------------------------------

    async def prepare(self, called: str, caller_id: str, at: datetime | None = None) -> PreparedCall | None:
        """None when no enabled service answers ``called``."""
        stored = await load_service(self.db, called)
        if stored is None:
            return None
        instant = at or self.clock()
        hours = _hours_of(stored)
        state = state_at(hours, instant) if hours else None
        opening = next_opening(hours, instant) if hours and state and not state.is_open else None
        caller = await self.directory.lookup(caller_id, instant)
        language = caller.language if caller.language in LANGUAGES else stored.service.language
        facts = CallFacts(called_number=called, caller=caller, instant=instant, hours=state, next_opening=opening)
        return PreparedCall(stored.service, self._flow_of(stored), facts, language or "en")

    def _flow_of(self, stored: StoredService) -> Flow:
        """Parsed once per saved version: a busy number does not re-validate its flow on every call."""
        if stored.flow is None:
            return DEFAULT_FLOW
        key = (stored.service.id, stored.flow_version)
        if key not in self._flows:
            self._flows[key] = parse_flow(stored.flow)
        return self._flows[key]

    async def simulate(self, called: str, caller_id: str, at: datetime, keys: Sequence[str]) -> Simulation:
        prepared = await self.prepare(called, caller_id, at)
        if prepared is None:
            raise ServiceNotFound(f"no enabled service number {called!r}")
        return await simulate(prepared.flow, prepared.facts, prepared.language, keys,
                              wait_estimate=self.wait_estimate, queue_check=self.queue_check)

    # --- flows -----------------------------------------------------------------------------------

    def known_prompts(self) -> set[str]:
        """The catalog's prompts (built for every language) and any prompt recorded in every language."""
        recorded = [{path.stem for path in (self.prompts.root / language).glob("*.wav")} for language in LANGUAGES]
        return set(load_catalog()) | set.intersection(*recorded)

    def check_flow(self, data: Mapping[str, Any]) -> Flow:
        flow = parse_flow(data)
        validate_flow(flow, self.known_prompts())
        return flow

    async def save_flow(self, number: str, data: Mapping[str, Any], author: str) -> int:
        """Validates first (FlowInvalid lists every reason), then stores; returns the new version."""
        flow = self.check_flow(data)
        async with self.db.session() as session:
            service = await require_service(session, number)
            return await write_flow(session, service, dump_flow(flow), author)

    async def stored(self, number: str) -> StoredService:
        stored = await load_service(self.db, number, enabled_only=False)
        if stored is None:
            raise ServiceNotFound(f"no service number {number!r}")
        return stored

    # --- hours -----------------------------------------------------------------------------------

    def check_hours(self, data: Mapping[str, Any]) -> OpeningHours:
        """The override is not part of the document: it is set and cleared on its own."""
        if isinstance(data, Mapping) and "override" in data:
            raise ScheduleError(["override: set it with the override action, not in the hours document"])
        return parse_opening_hours(data)

    async def save_hours(self, number: str, data: Mapping[str, Any], author: str) -> OpeningHours:
        hours = self.check_hours(data)
        async with self.db.session() as session:
            service = await require_service(session, number)
            await write_hours(session, service, dump_opening_hours(hours), author)
        return hours

    async def set_override(self, number: str, state: Literal["open", "closed"] | None, until: datetime | None,
                           reason: str, author: str) -> None:
        """``state`` None clears it; otherwise ``until`` must be in the future and within 31 days."""
        if state is not None:
            if until is None:
                raise ScheduleError(["override.until: required"])
            validate_override(Override(state, until, reason), self.clock())
        async with self.db.session() as session:
            service = await require_service(session, number)
            await write_override(session, service, state, until if state else None, reason if state else "", author)

    async def hours_status(self, number: str, at: datetime | None = None) -> dict[str, Any]:
        """What the supervision screen shows: state now, why, and when it changes."""
        stored = await self.stored(number)
        hours = _hours_of(stored)
        instant = at or self.clock()
        if hours is None:
            return {"configured": False, "status": "open", "at": instant.isoformat()}
        state = state_at(hours, instant)
        change = next_closing(hours, instant) if state.is_open else next_opening(hours, instant)
        return {"configured": True, "at": instant.isoformat(), **_state_dict(state),
                "next_change": change.isoformat() if change else None, "timezone": hours.timezone,
                "override": stored.override if active_override(hours.override, instant) else None}


def _hours_of(stored: StoredService) -> OpeningHours | None:
    if stored.hours is None:
        return None
    hours = parse_opening_hours(stored.hours)
    if stored.override is None:
        return hours
    return dataclasses.replace(hours, override=Override(
        stored.override["state"], datetime.fromisoformat(stored.override["until"]), stored.override["reason"]))


def _state_dict(state: ScheduleState) -> dict[str, Any]:
    return {"status": state.status.value, "is_open": state.is_open, "reason": state.reason,
            "holiday_name": state.holiday_name}


def ivr_service(settings: Settings, db: Database, clock: Clock = utcnow) -> IvrService:
    """The IVR service as the server, the CLI and the demo build it."""
    return IvrService(db, PromptStore(settings.paths.prompts_dir), CallerDirectory(db, settings.ivr.default_region),
                      clock)
