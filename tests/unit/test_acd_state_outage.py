"""The shared state (Redis) down while callers wait: nobody can be reserved, so a caller keeps its place and is
retried at the next tick, goes to the overflow at the queue's max wait (or after ``UNRESERVABLE_MAX_WAIT_S``
without one) instead of waiting for ever, and the agents' saved states are seeded again when the state comes
back empty (a restarted Redis without persistence)."""

from __future__ import annotations

from typing import Any

import pytest

from cti.acd.calls import CallPhase
from cti.acd.model import AgentState
from cti.acd.service import UNRESERVABLE_MAX_WAIT_S
from cti.db import Database
from cti.state import InMemoryStateBackend, StateUnavailable
from tests.support.acd import Desk, make_desk, queue


class SwitchableState(InMemoryStateBackend):
    """The in-process backend, with an off switch: while ``down``, every operation is refused as Redis would."""

    down = False

    def __getattribute__(self, name: str) -> Any:
        value = super().__getattribute__(name)
        if name in ("get", "set", "set_if_absent", "compare_and_set", "keys", "publish", "delete", "incr") \
                and super().__getattribute__("down"):
            async def refused(*_args: Any, **_kwargs: Any) -> Any:
                raise StateUnavailable("redis at test unavailable")
            return refused
        return value


async def _desk(database: Database, **options: Any) -> tuple[Desk, SwitchableState]:
    state = SwitchableState()
    desk = await make_desk(database, (queue(**options),), state=state)
    await desk.acd.login("alice")
    return desk, state


async def test_a_waiting_caller_goes_to_the_overflow_at_the_max_wait_while_nobody_can_be_reserved(
    database: Database, caplog: pytest.LogCaptureFixture,
) -> None:
    desk, state = await _desk(database, max_wait_s=40)
    state.down = True
    call = await desk.join()
    for _ in range(5):
        await desk.route()
        assert call.phase is CallPhase.WAITING and desk.acd.position(call) == 1  # kept its place
        assert not desk.acd._wake.is_set()  # retried at the next tick, not in a spin
    assert caplog.text.count("cannot reserve agent alice") == 1  # said once, not at every tick
    desk.clock.advance(40)
    await desk.route()
    assert call.phase is CallPhase.OVERFLOW and "overflow:voicemail" in call.path


async def test_without_a_max_wait_the_outage_bound_applies(database: Database) -> None:
    desk, state = await _desk(database)
    state.down = True
    call = await desk.join()
    desk.clock.advance(UNRESERVABLE_MAX_WAIT_S - 1)
    await desk.route()
    assert call.phase is CallPhase.WAITING
    desk.clock.advance(1)
    await desk.route()
    assert call.phase is CallPhase.OVERFLOW


async def test_the_state_back_in_time_the_caller_gets_the_agent(database: Database) -> None:
    desk, state = await _desk(database, max_wait_s=40)
    state.down = True
    call = await desk.join()
    await desk.route()
    state.down = False
    desk.clock.advance(10)
    await desk.route()
    assert (call.phase, call.agent_id) == (CallPhase.ASSIGNED, "alice")


async def test_agents_are_seeded_again_when_the_state_comes_back_empty(database: Database) -> None:
    desk, state = await _desk(database)
    for key in await state.keys(""):  # Redis restarted without persistence
        await state.delete(key)
    await desk.acd._resync()
    assert desk.status("alice").state is AgentState.LOGGED_OUT  # what the node saw before this fix
    await desk.acd._reseed_when_back()
    assert desk.status("alice").state is AgentState.AVAILABLE
    assert (await desk.board_status("alice")).state is AgentState.AVAILABLE
