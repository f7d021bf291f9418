"""Two server nodes, as two OS processes on one Redis, never give one agent two calls at once.

Each node (``tests/support/acd_node.py``) runs many tasks that race to reserve randomly chosen agents of a
small team. Every reservation a node won is logged with its start and end on one scale shared by both
processes (a counter in Redis, see the node's docstring); the parent then looks for two reservations of
one agent that overlap. The negative control runs the same workload with a read-then-write reservation
(no compare-and-set) and must find overlaps between the two nodes, which proves the check can fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import sys
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest
from redis.asyncio import Redis

from cti.acd.model import AgentState
from cti.acd.shared import AgentBoard
from cti.state import RedisStateBackend, StateUnavailable
from tests.support.acd_node import READY_KEY, START_KEY, agent_ids

pytestmark = pytest.mark.redis

ROOT = Path(__file__).resolve().parents[2]
NODES = ("node-a", "node-b")
AGENTS = 20
TASKS = 200  # per node
RUN_S = 3.0
CONTROL_RUN_S = 1.0
CONTROL_ROUNDS = 5  # the control stops at the first round with an overlap across the nodes
RUN_GUARD_S = 20.0  # only turns a stuck node into a failure instead of a hang; never asserted
READY_POLL_S = 0.01


@dataclass(frozen=True)
class Hold:
    """One reservation a node believed it won: the agent was its own from ``start`` to ``end``."""

    agent: str
    call: str
    node: str
    start: int
    end: int


@dataclass
class Run:
    holds: list[Hold]
    summaries: dict[str, dict[str, object]]
    final: dict[str, AgentState]

    def won_by(self, node: str) -> int:
        return sum(hold.node == node for hold in self.holds)


@pytest.fixture
async def cleanup(redis_url: str, state_key_prefix: str) -> AsyncIterator[None]:
    """Drop the test's keys (best effort: with Redis down the test itself has already failed)."""
    yield
    state = RedisStateBackend(redis_url, state_key_prefix)
    try:
        with contextlib.suppress(StateUnavailable):
            for key in await state.keys(""):
                await state.delete(key)
    finally:
        await state.close()


def overlaps(holds: Iterable[Hold]) -> list[tuple[Hold, Hold]]:
    """Every pair of reservations of one agent whose spans intersect."""
    by_agent: dict[str, list[Hold]] = defaultdict(list)
    for hold in holds:
        by_agent[hold.agent].append(hold)
    found: list[tuple[Hold, Hold]] = []
    for agent_holds in by_agent.values():
        agent_holds.sort(key=lambda hold: hold.start)
        for index, first in enumerate(agent_holds):
            for second in agent_holds[index + 1 :]:
                if second.start >= first.end:
                    break
                found.append((first, second))
    return found


def handovers(holds: Iterable[Hold]) -> int:
    """How often an agent's next reservation was won by the other node: the nodes really competed."""
    by_agent: dict[str, list[Hold]] = defaultdict(list)
    for hold in holds:
        by_agent[hold.agent].append(hold)
    ordered = (sorted(agent_holds, key=lambda hold: hold.start) for agent_holds in by_agent.values())
    return sum(a.node != b.node for agent_holds in ordered for a, b in itertools.pairwise(agent_holds))


async def start_node(redis_url: str, prefix: str, node: str, mode: str, run_s: float) -> asyncio.subprocess.Process:
    arguments = [redis_url, prefix, node, mode, str(AGENTS), str(TASKS), str(run_s)]
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.support.acd_node",
        *arguments,
        cwd=ROOT,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def release_together(redis_url: str, prefix: str, processes: list[asyncio.subprocess.Process]) -> None:
    """Wait until every node is connected and waiting, then let them all start at once."""
    redis = Redis.from_url(redis_url, decode_responses=True)
    try:
        while await redis.get(prefix + READY_KEY) != str(len(processes)):
            if any(process.returncode is not None for process in processes):
                return  # a node died before the barrier: its output says why
            await asyncio.sleep(READY_POLL_S)
        await redis.rpush(prefix + START_KEY, *["go"] * len(processes))
    finally:
        await redis.aclose()


async def run_nodes(redis_url: str, prefix: str, mode: str, run_s: float) -> Run:
    state = RedisStateBackend(redis_url, prefix)
    board = AgentBoard(state)
    try:
        for agent in agent_ids(AGENTS):
            await board.change(agent, board.login(f"PJSIP/{agent}"))
        outputs = await run_processes(redis_url, prefix, mode, run_s)
        final = {agent: status.state for agent, status in (await board.snapshot()).items()}
    finally:
        await state.close()
    return parse(outputs, final)


async def run_processes(redis_url: str, prefix: str, mode: str, run_s: float) -> list[str]:
    processes = [await start_node(redis_url, prefix, node, mode, run_s) for node in NODES]
    try:
        async with asyncio.timeout(RUN_GUARD_S):
            await release_together(redis_url, prefix, processes)
            results = await asyncio.gather(*(process.communicate() for process in processes))
    except TimeoutError:
        pytest.fail(f"the nodes were still running after {RUN_GUARD_S}s")
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
                await process.communicate()
    for node, process, (_, stderr) in zip(NODES, processes, results, strict=True):
        if process.returncode != 0:
            pytest.fail(f"{node} exited with {process.returncode}:\n{stderr.decode()[-3000:]}")
    return [stdout.decode() for stdout, _ in results]


def parse(outputs: list[str], final: dict[str, AgentState]) -> Run:
    holds: list[Hold] = []
    summaries: dict[str, dict[str, object]] = {}
    for output in outputs:
        for line in output.splitlines():
            entry = json.loads(line)
            if "summary" in entry:
                summaries[entry["summary"]["node"]] = entry["summary"]
            else:
                holds.append(Hold(entry["agent"], entry["call"], entry["node"], entry["start"], entry["end"]))
    assert sorted(summaries) == sorted(NODES)
    return Run(holds, summaries, final)


def figures(run: Run) -> dict[str, object]:
    won = {node: run.won_by(node) for node in NODES}
    busy = {node: run.summaries[node]["busy"] for node in NODES}
    return {"won": won, "busy": busy, "total": len(run.holds), "handovers": handovers(run.holds)}


async def test_two_nodes_never_reserve_one_agent_twice(redis_url: str, state_key_prefix: str, cleanup: None) -> None:
    run = await run_nodes(redis_url, state_key_prefix, "atomic", RUN_S)
    print("two nodes, compare-and-set:", json.dumps(figures(run) | {"overlaps": len(overlaps(run.holds))}))
    for node in NODES:
        assert run.summaries[node]["errors"] == []
        assert run.summaries[node]["won"] == run.won_by(node) > 0  # both nodes won reservations
    assert all(hold.start < hold.end for hold in run.holds)
    assert len({hold.call for hold in run.holds}) == len(run.holds)
    assert overlaps(run.holds) == []
    assert handovers(run.holds) > 0  # agents went back and forth between the nodes: the contention was real
    assert run.final == dict.fromkeys(agent_ids(AGENTS), AgentState.AVAILABLE)  # nobody left stuck


async def test_control_a_reservation_without_compare_and_set_is_caught(
    redis_url: str, state_key_prefix: str, cleanup: None
) -> None:
    """Same workload, read-then-write reservation: the check must see double bookings, also across nodes."""
    across: list[tuple[Hold, Hold]] = []
    rounds = 0
    while not across and rounds < CONTROL_ROUNDS:
        rounds += 1
        run = await run_nodes(redis_url, f"{state_key_prefix}round-{rounds}:", "naive", CONTROL_RUN_S)
        found = overlaps(run.holds)
        across = [(first, second) for first, second in found if first.node != second.node]
        print(f"control round {rounds}:", json.dumps(figures(run) | {"overlaps": len(found), "across": len(across)}))
    assert across, f"no overlap across nodes in {rounds} rounds of the non-atomic reservation: the check cannot fail"
