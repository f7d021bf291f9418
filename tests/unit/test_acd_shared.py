"""AgentBoard: every transition of an agent's live state, on the in-process backend and on real Redis.

Each test taking ``state_nodes`` runs once per backend (the Redis variant has two client nodes on one
server and fails, never skips, when Redis is down). ``since``/``until`` come from an injected wall clock,
so they are compared exactly. The stateful property test at the end runs on the in-process backend only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import replace
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from cti.acd.model import AgentState
from cti.acd.shared import (
    CHANNEL,
    NO_ANSWER,
    AgentBoard,
    AgentBusy,
    AgentStatus,
    Change,
    statuses_by_state,
)
from cti.state import InMemoryStateBackend, Subscription
from tests.plugins.state import FakeClock, StateNodes

T0 = 1_700_000_000.0  # an arbitrary epoch instant: nothing assumes the wall clock starts at 0
RECEIVE_GUARD = 10.0  # only turns a lost message into a failure instead of a hang; never asserted
AGENT = "alice"
PHONE = "PJSIP/1001"
CALL = "call-1"
OTHER_CALL = "call-2"
NODE = "node-a"
WRAP_UP_S = 30.0
MAX_MISSES = 3

T = TypeVar("T")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def board(state_nodes: StateNodes, clock: FakeClock) -> AgentBoard:
    return AgentBoard(state_nodes.backend, wall_clock=clock)


@pytest.fixture
def other_board(state_nodes: StateNodes, clock: FakeClock) -> AgentBoard:
    """The board of a second server node (the second Redis client; the same store in memory)."""
    return AgentBoard(state_nodes.nodes[-1], wall_clock=clock)


async def receive(subscription: Subscription) -> AgentStatus:
    channel, message = await asyncio.wait_for(anext(subscription), RECEIVE_GUARD)
    assert channel == CHANNEL
    return AgentStatus.decode(message)


def status_in(state: AgentState, agent_id: str = AGENT, call: str = CALL) -> AgentStatus:
    """The status each transition leaves behind (the transition tests check exactly these values)."""
    statuses = {
        AgentState.LOGGED_OUT: AgentStatus(agent_id),
        AgentState.AVAILABLE: AgentStatus(agent_id, AgentState.AVAILABLE, None, PHONE, since=T0),
        AgentState.PAUSED: AgentStatus(agent_id, AgentState.PAUSED, "lunch", PHONE, since=T0),
        AgentState.RINGING: AgentStatus(agent_id, AgentState.RINGING, None, PHONE, call, NODE, T0),
        AgentState.ON_CALL: AgentStatus(agent_id, AgentState.ON_CALL, None, PHONE, call, NODE, T0),
        AgentState.WRAP_UP: AgentStatus(
            agent_id, AgentState.WRAP_UP, None, PHONE, call, NODE, T0, until=T0 + WRAP_UP_S
        ),
    }
    return statuses[state]


async def bring_to(board: AgentBoard, state: AgentState, agent_id: str = AGENT, call: str = CALL) -> AgentStatus:
    """Put the agent straight in ``state`` (as another node left it), so each test exercises one transition."""
    status = status_in(state, agent_id, call)
    if state is not AgentState.LOGGED_OUT:
        assert await board.seed(status) is True
    return status


async def refused(board: AgentBoard, change: Change, agent_id: str = AGENT) -> AgentBusy:
    """The change raises AgentBusy and leaves the stored status exactly as it was."""
    before = await board.get(agent_id)
    with pytest.raises(AgentBusy) as caught:
        await board.change(agent_id, change)
    assert await board.get(agent_id) == before
    return caught.value


async def unchanged(board: AgentBoard, change: Change, agent_id: str = AGENT) -> None:
    before = await board.get(agent_id)
    assert await board.change(agent_id, change) == before
    assert await board.get(agent_id) == before


# --- login ----------------------------------------------------------------------------------------


async def test_an_agent_without_a_key_is_logged_out(board: AgentBoard) -> None:
    assert await board.get(AGENT) == AgentStatus(AGENT)
    assert await board.snapshot() == {}


async def test_login_makes_a_logged_out_agent_available(board: AgentBoard, clock: FakeClock) -> None:
    status = await board.change(AGENT, board.login(PHONE))
    assert status == AgentStatus(AGENT, AgentState.AVAILABLE, endpoint=PHONE, since=T0)
    assert await board.get(AGENT) == status


async def test_login_again_refreshes_the_endpoint_and_keeps_since(board: AgentBoard, clock: FakeClock) -> None:
    await board.change(AGENT, board.login(PHONE))
    clock.advance(60)
    status = await board.change(AGENT, board.login("PJSIP/2002"))
    assert (status.state, status.endpoint, status.since) == (AgentState.AVAILABLE, "PJSIP/2002", T0)


async def test_login_keeps_a_paused_agent_paused(board: AgentBoard, clock: FakeClock) -> None:
    paused = await bring_to(board, AgentState.PAUSED)
    clock.advance(60)
    status = await board.change(AGENT, board.login("PJSIP/2002"))
    assert status == AgentStatus(AGENT, AgentState.PAUSED, "lunch", "PJSIP/2002", since=paused.since)


@pytest.mark.parametrize("state", [AgentState.RINGING, AgentState.ON_CALL])
async def test_login_is_refused_during_a_call(board: AgentBoard, state: AgentState) -> None:
    await bring_to(board, state)
    error = await refused(board, board.login("PJSIP/2002"))
    assert state.value in str(error)
    assert error.code == "acd.agent_busy"


# --- pause, resume, logout ------------------------------------------------------------------------


async def test_pause_and_resume(board: AgentBoard, clock: FakeClock) -> None:
    await bring_to(board, AgentState.AVAILABLE)
    clock.advance(10)
    paused = await board.change(AGENT, board.pause("lunch"))
    assert paused == AgentStatus(AGENT, AgentState.PAUSED, "lunch", PHONE, since=T0 + 10)
    clock.advance(10)
    paused = await board.change(AGENT, board.pause("meeting"))
    assert (paused.reason, paused.since) == ("meeting", T0 + 20)
    clock.advance(10)
    resumed = await board.change(AGENT, board.resume())
    assert resumed == AgentStatus(AGENT, AgentState.AVAILABLE, None, PHONE, since=T0 + 30)


async def test_pause_with_the_same_reason_and_resume_when_available_change_nothing(
    board: AgentBoard, clock: FakeClock
) -> None:
    await bring_to(board, AgentState.AVAILABLE)
    clock.advance(10)
    await unchanged(board, board.resume())
    await board.change(AGENT, board.pause("lunch"))
    clock.advance(10)
    await unchanged(board, board.pause("lunch"))


async def test_logout_clears_the_endpoint(board: AgentBoard, clock: FakeClock) -> None:
    await bring_to(board, AgentState.PAUSED)
    clock.advance(10)
    status = await board.change(AGENT, board.logout())
    assert status == AgentStatus(AGENT, AgentState.LOGGED_OUT, since=T0 + 10)
    assert (await board.snapshot())[AGENT] == status  # the key stays, saying "logged out"


@pytest.mark.parametrize("change", ["pause", "resume", "logout"])
async def test_wrap_up_may_be_ended_by_pause_resume_or_logout(board: AgentBoard, clock: FakeClock, change: str) -> None:
    await bring_to(board, AgentState.WRAP_UP)
    clock.advance(5)
    changes = {"pause": board.pause("tea"), "resume": board.resume(), "logout": board.logout()}
    status = await board.change(AGENT, changes[change])
    assert (status.call, status.node, status.until, status.since) == ("", "", 0.0, T0 + 5)


@pytest.mark.parametrize("state", [AgentState.RINGING, AgentState.ON_CALL])
@pytest.mark.parametrize("change", ["pause", "resume", "logout"])
async def test_pause_resume_and_logout_are_refused_during_a_call(
    board: AgentBoard, state: AgentState, change: str
) -> None:
    await bring_to(board, state)
    changes = {"pause": board.pause("lunch"), "resume": board.resume(), "logout": board.logout()}
    error = await refused(board, changes[change])
    assert state.value in str(error)


@pytest.mark.parametrize("change", ["pause", "resume"])
async def test_a_logged_out_agent_cannot_pause_or_resume(board: AgentBoard, change: str) -> None:
    await bring_to(board, AgentState.PAUSED)
    await board.change(AGENT, board.logout())
    changes = {"pause": board.pause("lunch"), "resume": board.resume()}
    error = await refused(board, changes[change])
    assert "logged out" in str(error)


async def test_logout_of_a_logged_out_agent_changes_nothing(board: AgentBoard) -> None:
    await unchanged(board, board.logout())
    assert await board.snapshot() == {}  # not even a key was written
    await bring_to(board, AgentState.AVAILABLE)
    await board.change(AGENT, board.logout())
    await unchanged(board, board.logout())


# --- reserve --------------------------------------------------------------------------------------


async def test_reserve_rings_an_available_agent(board: AgentBoard, clock: FakeClock) -> None:
    await bring_to(board, AgentState.AVAILABLE)
    clock.advance(7)
    status = await board.change(AGENT, board.reserve(CALL, NODE))
    assert status == AgentStatus(AGENT, AgentState.RINGING, None, PHONE, CALL, NODE, since=T0 + 7)


@pytest.mark.parametrize(
    "state", [AgentState.LOGGED_OUT, AgentState.PAUSED, AgentState.RINGING, AgentState.ON_CALL, AgentState.WRAP_UP]
)
async def test_reserve_is_refused_unless_available(board: AgentBoard, state: AgentState) -> None:
    await bring_to(board, state)
    error = await refused(board, board.reserve(OTHER_CALL, NODE))
    assert state.value in str(error)
    assert "not available" in str(error)


async def test_a_second_reserve_from_another_node_fails(board: AgentBoard, other_board: AgentBoard) -> None:
    await bring_to(board, AgentState.AVAILABLE)
    first = await board.change(AGENT, board.reserve(CALL, NODE))
    with pytest.raises(AgentBusy, match="ringing"):
        await other_board.change(AGENT, other_board.reserve(OTHER_CALL, "node-b"))
    assert await other_board.get(AGENT) == first


async def test_concurrent_reserves_have_exactly_one_winner(board: AgentBoard, other_board: AgentBoard) -> None:
    await bring_to(board, AgentState.AVAILABLE)

    async def attempt(on: AgentBoard, number: int) -> AgentStatus | None:
        try:
            return await on.change(AGENT, on.reserve(f"call-{number}", f"node-{number % 2}"))
        except AgentBusy:
            return None

    results = await asyncio.gather(*(attempt((board, other_board)[n % 2], n) for n in range(40)))
    winners = [status for status in results if status is not None]
    assert len(winners) == 1
    assert await board.get(AGENT) == winners[0]


# --- the call: answered, finished, released, missed, wrap_up_over ---------------------------------


async def test_answered_puts_the_ringing_agent_on_the_call(board: AgentBoard, clock: FakeClock) -> None:
    await bring_to(board, AgentState.RINGING)
    clock.advance(3)
    talking = await board.change(AGENT, board.answered(CALL))
    assert talking == AgentStatus(AGENT, AgentState.ON_CALL, None, PHONE, CALL, NODE, since=T0 + 3)


async def test_finished_starts_the_wrap_up(board: AgentBoard, clock: FakeClock) -> None:
    await bring_to(board, AgentState.ON_CALL)
    clock.advance(100)
    wrapping = await board.change(AGENT, board.finished(CALL, WRAP_UP_S))
    expected = AgentStatus(AGENT, AgentState.WRAP_UP, None, PHONE, CALL, NODE, T0 + 100, until=T0 + 100 + WRAP_UP_S)
    assert wrapping == expected


async def test_a_whole_call_through_the_transitions(
    board: AgentBoard, other_board: AgentBoard, clock: FakeClock
) -> None:
    """Login, ring, answer, hang up, wrap up, each step on either node: back to available, ready for the next."""
    steps = [
        (board, board.login(PHONE), status_in(AgentState.AVAILABLE)),
        (other_board, other_board.reserve(CALL, NODE), status_in(AgentState.RINGING)),
        (board, board.answered(CALL), status_in(AgentState.ON_CALL)),
        (other_board, other_board.finished(CALL, WRAP_UP_S), status_in(AgentState.WRAP_UP)),
        (board, board.wrap_up_over(CALL), status_in(AgentState.AVAILABLE)),
    ]
    for number, (on, change, expected) in enumerate(steps):
        clock.now = T0 + number
        shifted = replace(expected, since=clock.now, until=expected.until and clock.now + WRAP_UP_S)
        assert await on.change(AGENT, change) == shifted, f"step {number}"


@pytest.mark.parametrize("wrap_up_s", [0, 0.0, -1.0])
async def test_finished_without_wrap_up_time_is_available_at_once(
    board: AgentBoard, clock: FakeClock, wrap_up_s: float
) -> None:
    await bring_to(board, AgentState.ON_CALL)
    clock.advance(50)
    status = await board.change(AGENT, board.finished(CALL, wrap_up_s))
    assert status == AgentStatus(AGENT, AgentState.AVAILABLE, None, PHONE, since=T0 + 50)


async def test_released_frees_the_agent_without_counting_a_miss(board: AgentBoard, clock: FakeClock) -> None:
    await bring_to(board, AgentState.AVAILABLE)
    await board.change(AGENT, board.reserve("earlier", NODE))
    await board.change(AGENT, board.missed("earlier", MAX_MISSES))  # one miss already
    await board.change(AGENT, board.reserve(CALL, NODE))
    clock.advance(4)
    status = await board.change(AGENT, board.released(CALL))
    assert status == AgentStatus(AGENT, AgentState.AVAILABLE, None, PHONE, since=T0 + 4, misses=1)


async def ring_and_miss(board: AgentBoard, call: str, max_misses: int = MAX_MISSES) -> AgentStatus:
    await board.change(AGENT, board.reserve(call, NODE))
    return await board.change(AGENT, board.missed(call, max_misses))


async def test_misses_are_counted_then_the_agent_is_paused(board: AgentBoard, clock: FakeClock) -> None:
    await bring_to(board, AgentState.AVAILABLE)
    for number in range(1, MAX_MISSES):
        clock.advance(1)
        status = await ring_and_miss(board, f"call-{number}")
        assert status == AgentStatus(AGENT, AgentState.AVAILABLE, None, PHONE, since=clock.now, misses=number)
    clock.advance(1)
    status = await ring_and_miss(board, "call-last")
    assert status == AgentStatus(AGENT, AgentState.PAUSED, NO_ANSWER, PHONE, since=clock.now, misses=0)
    await refused(board, board.reserve(CALL, NODE))


async def test_max_misses_of_one_pauses_at_the_first_miss(board: AgentBoard) -> None:
    await bring_to(board, AgentState.AVAILABLE)
    status = await ring_and_miss(board, CALL, max_misses=1)
    assert (status.state, status.reason) == (AgentState.PAUSED, NO_ANSWER)


async def test_an_answer_resets_the_miss_counter(board: AgentBoard) -> None:
    await bring_to(board, AgentState.AVAILABLE)
    for number in range(MAX_MISSES - 1):
        await ring_and_miss(board, f"missed-{number}")
    await board.change(AGENT, board.reserve(CALL, NODE))
    assert (await board.change(AGENT, board.answered(CALL))).misses == 0
    await board.change(AGENT, board.finished(CALL, 0))
    assert (await ring_and_miss(board, "after")).state is AgentState.AVAILABLE  # counting starts again


@pytest.mark.parametrize("pause", ["by the agent", "automatic"])
async def test_a_pause_resets_the_miss_counter_and_resume_starts_from_zero(board: AgentBoard, pause: str) -> None:
    await bring_to(board, AgentState.AVAILABLE)
    for number in range(MAX_MISSES - 1):
        await ring_and_miss(board, f"missed-{number}")
    if pause == "by the agent":
        paused = await board.change(AGENT, board.pause("lunch"))
    else:
        paused = await ring_and_miss(board, "one-more")
    assert (paused.state, paused.misses) == (AgentState.PAUSED, 0)
    assert (await board.change(AGENT, board.resume())).misses == 0
    for number in range(1, MAX_MISSES):
        assert await ring_and_miss(board, f"after-{number}") == AgentStatus(
            AGENT, AgentState.AVAILABLE, None, PHONE, since=T0, misses=number
        )


async def test_wrap_up_over_for_the_matching_call(board: AgentBoard, clock: FakeClock) -> None:
    await bring_to(board, AgentState.WRAP_UP)
    await unchanged(board, board.wrap_up_over(OTHER_CALL))
    clock.advance(WRAP_UP_S)
    status = await board.change(AGENT, board.wrap_up_over(CALL))
    assert status == AgentStatus(AGENT, AgentState.AVAILABLE, None, PHONE, since=clock.now)


async def test_wrap_up_over_without_a_call_matches_any(board: AgentBoard) -> None:
    await bring_to(board, AgentState.WRAP_UP)
    status = await board.change(AGENT, board.wrap_up_over(""))
    assert (status.state, status.call, status.until) == (AgentState.AVAILABLE, "", 0.0)


@pytest.mark.parametrize(
    "state", [AgentState.LOGGED_OUT, AgentState.AVAILABLE, AgentState.PAUSED, AgentState.RINGING, AgentState.ON_CALL]
)
@pytest.mark.parametrize("call", [CALL, ""])
async def test_wrap_up_over_leaves_other_states_alone(board: AgentBoard, state: AgentState, call: str) -> None:
    await bring_to(board, state)
    await unchanged(board, board.wrap_up_over(call))


def call_steps(board: AgentBoard, call: str) -> dict[str, Change]:
    return {
        "answered": board.answered(call),
        "finished": board.finished(call, WRAP_UP_S),
        "finished_no_wrap_up": board.finished(call, 0),
        "released": board.released(call),
        "missed": board.missed(call, MAX_MISSES),
        "missed_pausing": board.missed(call, 1),
    }


STEPS = list(call_steps(AgentBoard(InMemoryStateBackend()), CALL))


@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize("state", [AgentState.RINGING, AgentState.ON_CALL, AgentState.WRAP_UP])
async def test_steps_for_a_call_the_agent_does_not_have_are_ignored(
    board: AgentBoard, clock: FakeClock, state: AgentState, step: str
) -> None:
    await bring_to(board, state, call=CALL)
    clock.advance(1)
    await unchanged(board, call_steps(board, OTHER_CALL)[step])


@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize("state", [AgentState.LOGGED_OUT, AgentState.AVAILABLE, AgentState.PAUSED])
async def test_steps_after_the_call_left_the_agent_are_ignored(
    board: AgentBoard, clock: FakeClock, state: AgentState, step: str
) -> None:
    """A late event (e.g. the ring timer) for a call the agent was released from changes nothing."""
    await bring_to(board, AgentState.AVAILABLE)
    await board.change(AGENT, board.reserve(CALL, NODE))
    await board.change(AGENT, board.released(CALL))
    if state is not AgentState.AVAILABLE:
        await board.change(AGENT, board.pause("lunch") if state is AgentState.PAUSED else board.logout())
    clock.advance(1)
    await unchanged(board, call_steps(board, CALL)[step])
    await unchanged(board, call_steps(board, "")[step])


@pytest.mark.parametrize("step", ["missed", "released"])
async def test_ring_only_steps_leave_a_call_in_progress_alone(board: AgentBoard, step: str) -> None:
    """``missed`` (ring-no-answer) and ``released`` (the caller left while the agent rang) describe a ringing
    agent; a late one for an answered call must not free the agent while it talks (it could be offered a
    second call) nor count a miss."""
    await bring_to(board, AgentState.ON_CALL)
    await unchanged(board, call_steps(board, CALL)[step])


# --- seed, snapshot, forget -----------------------------------------------------------------------


async def test_seed_creates_a_missing_agent(board: AgentBoard) -> None:
    persisted = AgentStatus(AGENT, AgentState.PAUSED, "lunch", PHONE, since=T0 - 100)
    assert await board.seed(persisted) is True
    assert await board.get(AGENT) == persisted


async def test_seed_never_overwrites_a_live_status(board: AgentBoard, other_board: AgentBoard) -> None:
    live = await bring_to(board, AgentState.RINGING)
    assert await other_board.seed(AgentStatus(AGENT, AgentState.PAUSED, "lunch", PHONE, since=T0 - 100)) is False
    assert await board.get(AGENT) == live


async def test_snapshot_lists_every_agent_with_a_key(board: AgentBoard, other_board: AgentBoard) -> None:
    alice = await bring_to(board, AgentState.ON_CALL, "alice", "call-a")
    bob = await bring_to(other_board, AgentState.PAUSED, "bob")
    carol = await bring_to(board, AgentState.AVAILABLE, "carol")
    carol = await board.change("carol", board.logout())
    await board.get("dave")  # read only: no key, not listed
    assert await other_board.snapshot() == {"alice": alice, "bob": bob, "carol": carol}
    assert statuses_by_state(await board.snapshot()) == {
        "logged_out": 1,
        "available": 0,
        "ringing": 0,
        "on_call": 1,
        "wrap_up": 0,
        "paused": 1,
    }


async def test_forget_removes_the_agent(board: AgentBoard, other_board: AgentBoard) -> None:
    await bring_to(board, AgentState.AVAILABLE, "alice")
    bob = await bring_to(board, AgentState.AVAILABLE, "bob")
    await board.forget("alice")
    assert await other_board.get("alice") == AgentStatus("alice")
    assert await other_board.snapshot() == {"bob": bob}
    await board.forget("nobody")  # forgetting an unknown agent is harmless


# --- every change is published --------------------------------------------------------------------


async def test_every_change_is_published_to_the_other_nodes(
    state_nodes: StateNodes, board: AgentBoard, clock: FakeClock
) -> None:
    subscription = await state_nodes.nodes[-1].subscribe(CHANNEL)
    try:
        await publishes_each_change(board, clock, subscription)
    finally:
        await subscription.close()


async def publishes_each_change(board: AgentBoard, clock: FakeClock, subscription: Subscription) -> None:
    changes = [
        board.login(PHONE),
        board.pause("lunch"),
        board.resume(),
        board.reserve(CALL, NODE),
        board.answered(CALL),
        board.finished(CALL, WRAP_UP_S),
        board.wrap_up_over(CALL),
        board.reserve(OTHER_CALL, NODE),
        board.missed(OTHER_CALL, MAX_MISSES),
        board.reserve(CALL, NODE),
        board.released(CALL),
        board.logout(),
    ]
    for change in changes:
        clock.advance(1)
        status = await board.change(AGENT, change)
        assert await receive(subscription) == status
    await unchanged(board, board.logout())  # no change, so nothing published: the next message is the seed's
    seeded = AgentStatus("bob", AgentState.AVAILABLE, endpoint=PHONE, since=T0)
    await board.seed(seeded)
    assert await receive(subscription) == seeded
    clock.advance(1)
    await board.forget(AGENT)
    assert await receive(subscription) == AgentStatus(AGENT, since=clock.now)


async def test_a_refused_change_publishes_nothing(state_nodes: StateNodes, board: AgentBoard) -> None:
    subscription = await state_nodes.nodes[-1].subscribe(CHANNEL)
    try:
        with pytest.raises(AgentBusy):
            await board.change(AGENT, board.reserve(CALL, NODE))
        assert await board.seed(AgentStatus(AGENT)) is True  # the first message is the seed's
        assert await receive(subscription) == AgentStatus(AGENT)
    finally:
        await subscription.close()


# --- random sequences of operations keep the invariants (in-process backend) ----------------------

AGENTS = ("a0", "a1")
CALLS = ("c0", "c1", "c2")
NODES = ("n0", "n1")
MACHINE_MAX_MISSES = 2
BUSY_STATES = (AgentState.RINGING, AgentState.ON_CALL)
WITH_A_CALL = (AgentState.RINGING, AgentState.ON_CALL, AgentState.WRAP_UP)

nodes = st.integers(0, len(NODES) - 1)
agents = st.sampled_from(AGENTS)
# None: the call the agent has now (the usual event, so drawn most often); a named call: possibly a stale or
# foreign event
step_calls = st.one_of(st.none(), st.none(), st.sampled_from(CALLS))


class BoardMachine(RuleBasedStateMachine):
    """Several agents and calls on two nodes' boards sharing one in-process store.

    The board guarantees one call per agent; one agent per call is the router's part, which the machine
    plays by offering a call only while no agent rings for it or talks on it. The invariants then check that
    no board transition breaks either behind the router's back, whatever order the events come in.
    """

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.clock = FakeClock(T0)
        store = InMemoryStateBackend()
        self.boards = [AgentBoard(store, wall_clock=self.clock) for _ in NODES]

    def teardown(self) -> None:
        self.loop.close()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coroutine)

    def statuses(self) -> dict[str, AgentStatus]:
        return {agent: self.run(self.boards[0].get(agent)) for agent in AGENTS}

    def apply(self, node: int, agent: str, make: Callable[[AgentBoard], Change]) -> AgentStatus | None:
        """Apply the change on one node; None when refused. Both nodes then read the returned value."""
        board = self.boards[node]
        try:
            status = self.run(board.change(agent, make(board)))
        except AgentBusy:
            return None
        assert self.run(self.boards[1 - node].get(agent)) == status
        return status

    def call_step(self, node: int, agent: str, call: str | None, make: Callable[[str], Change]) -> None:
        before = self.statuses()[agent]
        call = before.call if call is None else call
        after = self.apply(node, agent, lambda board: make(call))
        assert after is not None, "call steps are never refused"
        if before.call != call or before.state not in BUSY_STATES:
            assert after == before, "a step for a call the agent does not ring for or talk on is ignored"

    @initialize()
    def everyone_logs_in(self) -> None:
        """Start where the interesting steps are: logged-out agents accept nothing but a login."""
        board = self.boards[0]
        for agent in AGENTS:
            self.run(board.change(agent, board.login(f"PJSIP/{agent}")))

    @rule(node=nodes, agent=agents, call=st.sampled_from(CALLS))
    def reserve(self, node: int, agent: str, call: str) -> None:
        statuses = self.statuses()
        if any(status.call == call and status.state in BUSY_STATES for status in statuses.values()):
            return  # the router never offers a call that already rings somewhere or is answered
        after = self.apply(node, agent, lambda board: board.reserve(call, NODES[node]))
        assert (after is not None) == (statuses[agent].state is AgentState.AVAILABLE), "reserve only from available"
        if after is not None:
            assert (after.state, after.call, after.node) == (AgentState.RINGING, call, NODES[node])

    @rule(node=nodes, agent=agents, call=step_calls)
    def answered(self, node: int, agent: str, call: str | None) -> None:
        self.call_step(node, agent, call, lambda call: self.boards[node].answered(call))

    @rule(node=nodes, agent=agents, call=step_calls, wrap_up_s=st.sampled_from([0.0, 5.0]))
    def finished(self, node: int, agent: str, call: str | None, wrap_up_s: float) -> None:
        self.call_step(node, agent, call, lambda call: self.boards[node].finished(call, wrap_up_s))

    @rule(node=nodes, agent=agents, call=step_calls)
    def released(self, node: int, agent: str, call: str | None) -> None:
        self.call_step(node, agent, call, lambda call: self.boards[node].released(call))

    @rule(node=nodes, agent=agents, call=step_calls)
    def missed(self, node: int, agent: str, call: str | None) -> None:
        self.call_step(node, agent, call, lambda call: self.boards[node].missed(call, MACHINE_MAX_MISSES))

    @rule(node=nodes, agent=agents, call=st.one_of(st.none(), st.sampled_from((*CALLS, ""))))
    def wrap_up_over(self, node: int, agent: str, call: str | None) -> None:
        before = self.statuses()[agent]
        call = before.call if call is None else call
        after = self.apply(node, agent, lambda board: board.wrap_up_over(call))
        matches = before.state is AgentState.WRAP_UP and call in ("", before.call)
        assert after is not None and (after.state is AgentState.AVAILABLE if matches else after == before)

    @rule(node=nodes, agent=agents)
    def login(self, node: int, agent: str) -> None:
        before = self.statuses()[agent]
        after = self.apply(node, agent, lambda board: board.login(f"PJSIP/{agent}"))
        assert (after is None) == (before.state in (*BUSY_STATES, AgentState.WRAP_UP))

    @rule(node=nodes, agent=agents, operation=st.sampled_from(["pause", "resume", "logout"]))
    def idle_change(self, node: int, agent: str, operation: str) -> None:
        before = self.statuses()[agent]
        changes: dict[str, Callable[[AgentBoard], Change]] = {
            "pause": lambda board: board.pause("lunch"),
            "resume": lambda board: board.resume(),
            "logout": lambda board: board.logout(),
        }
        after = self.apply(node, agent, changes[operation])
        logged_out = before.state is AgentState.LOGGED_OUT and operation != "logout"
        assert (after is None) == (before.state in BUSY_STATES or logged_out)

    @rule(seconds=st.sampled_from([0.5, 3.0]))
    def time_passes(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @invariant()
    def one_call_per_agent_and_one_agent_per_call(self) -> None:
        statuses = self.statuses()
        for status in statuses.values():
            assert (status.state in WITH_A_CALL) == (status.call != ""), f"a busy agent names its call: {status}"
            assert (status.state in WITH_A_CALL) == (status.node != ""), status
            assert (status.state is AgentState.WRAP_UP) == (status.until > 0), status
            assert status.misses < MACHINE_MAX_MISSES, status
        busy = [status.call for status in statuses.values() if status.state in BUSY_STATES]
        assert len(busy) == len(set(busy)), f"one call rings or talks on two agents: {statuses}"


def test_random_sequences_of_board_operations_keep_the_invariants() -> None:
    run_state_machine_as_test(
        BoardMachine,
        settings=settings(
            max_examples=200, stateful_step_count=30, deadline=None, suppress_health_check=[HealthCheck.too_slow]
        ),
    )
