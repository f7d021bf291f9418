"""One ACD server node in its own process, racing other nodes for the same agents on a shared Redis.

    python -m tests.support.acd_node REDIS_URL KEY_PREFIX NODE MODE AGENTS TASKS RUN_S

The agents ``agent-0`` .. ``agent-{AGENTS-1}`` must be logged in beforehand. After a barrier (the node counts
itself in ``READY_KEY``, then pops a token from the list ``START_KEY``, both under KEY_PREFIX) it runs TASKS
asyncio tasks for RUN_S seconds; each picks an agent at random, tries to reserve it for a new call, and when it
wins holds the call a few milliseconds, answers it and ends it without wrap-up (the agent is available again).

MODE ``atomic`` reserves through ``AgentBoard.change`` (compare-and-set); MODE ``naive`` reads the status,
yields to the event loop, then writes the reservation blindly: the race the board exists to prevent.

Every reservation the node believes it won is printed as a JSON line ``{"agent", "call", "node", "start",
"end", "start_time", "end_time"}``. ``start``/``end`` come from one counter in Redis incremented after the
reservation was stored and before the agent is set free again, so they order the events of every node on one
scale (Redis runs commands one at a time) with no clock involved; ``*_time`` are the Redis server's TIME at
those instants, for people. The last line is ``{"summary": {...}}`` with the node's counters.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from redis.asyncio import Redis

from cti.acd.model import AgentState
from cti.acd.shared import KEY_PREFIX, AgentBoard, AgentBusy
from cti.state import RedisStateBackend

READY_KEY = "acd-node:ready"
START_KEY = "acd-node:start"
CLOCK_KEY = "acd-node:clock"
BARRIER_GUARD_S = 30.0  # only turns a missing start signal into an exit instead of a hang
HOLD_S = (0.001, 0.004)
RETRY_S = (0.0, 0.002)


def with_pool_size(url: str, size: int) -> str:
    """The URL asking for a connection pool of ``size``: redis-py's asyncio pool refuses (``Too many
    connections``) beyond 100 connections in use by default, and every task here has a command in flight."""
    parts = urlsplit(url)
    query = [*parse_qsl(parts.query), ("max_connections", str(size))]
    return urlunsplit(parts._replace(query=urlencode(query)))


def agent_ids(count: int) -> list[str]:
    return [f"agent-{number}" for number in range(count)]


@dataclass
class Tally:
    won: int = 0
    busy: int = 0
    errors: list[str] = field(default_factory=list)


class Node:
    def __init__(self, url: str, prefix: str, name: str, mode: str, agents: list[str]) -> None:
        self.name = name
        self.mode = mode
        self.agents = agents
        self.prefix = prefix
        self.state = RedisStateBackend(url, prefix)
        self.board = AgentBoard(self.state)
        self.redis = Redis.from_url(url, decode_responses=True)  # the barrier and the event counter
        self.tally = Tally()
        self.records: list[dict[str, object]] = []

    async def close(self) -> None:
        await self.state.close()
        await self.redis.aclose()

    async def barrier(self) -> None:
        """Count in as ready, then block until the parent pushes one start token per node."""
        await self.redis.incr(self.prefix + READY_KEY)
        if await self.redis.blpop([self.prefix + START_KEY], timeout=BARRIER_GUARD_S) is None:
            raise SystemExit(f"{self.name}: no start signal within {BARRIER_GUARD_S}s")

    async def stamp(self) -> tuple[int, float]:
        """The next value of the shared event counter, with the Redis server's clock (one round trip)."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(self.prefix + CLOCK_KEY)
            pipe.time()
            counter, (seconds, microseconds) = await pipe.execute()
        return int(counter), seconds + microseconds / 1_000_000

    async def reserve(self, agent: str, call: str) -> bool:
        change = self.board.reserve(call, self.name)
        try:
            if self.mode == "atomic":
                await self.board.change(agent, change)
            else:
                ringing = change(await self.board.get(agent))  # refuses unless available, like the board
                await asyncio.sleep(0)  # the window between the read and the write
                await self.state.set(KEY_PREFIX + agent, ringing.encode())
        except AgentBusy:
            return False
        return True

    async def hang_up(self, agent: str, call: str) -> None:
        talking = await self.board.change(agent, self.board.answered(call))
        done = await self.board.change(agent, self.board.finished(call, 0))
        expected = (AgentState.ON_CALL, AgentState.AVAILABLE)
        if self.mode == "atomic" and (talking.state, done.state) != expected:
            self.tally.errors.append(f"{agent} {call}: {talking.state.value} then {done.state.value}")

    async def worker(self, number: int, stop_at: float) -> None:
        chooser = random.Random(f"{self.name}-{number}")
        count = 0
        while time.monotonic() < stop_at:
            agent, call = chooser.choice(self.agents), f"{self.name}-{number}-{count}"
            count += 1
            if not await self.reserve(agent, call):
                self.tally.busy += 1
                await asyncio.sleep(chooser.uniform(*RETRY_S))  # as a router waits for the next event
                continue
            start, start_time = await self.stamp()
            await asyncio.sleep(chooser.uniform(*HOLD_S))
            end, end_time = await self.stamp()
            await self.hang_up(agent, call)
            self.tally.won += 1
            record = {"agent": agent, "call": call, "node": self.name, "start": start, "end": end}
            self.records.append(record | {"start_time": start_time, "end_time": end_time})

    async def run(self, tasks: int, run_s: float) -> None:
        await self.barrier()
        stop_at = time.monotonic() + run_s
        results = await asyncio.gather(*(self.worker(n, stop_at) for n in range(tasks)), return_exceptions=True)
        self.tally.errors.extend(repr(result) for result in results if isinstance(result, BaseException))


async def main(url: str, prefix: str, name: str, mode: str, agents: int, tasks: int, run_s: float) -> None:
    if mode not in ("atomic", "naive"):
        raise SystemExit(f"unknown mode {mode!r}")
    node = Node(with_pool_size(url, 2 * tasks), prefix, name, mode, agent_ids(agents))
    try:
        await node.run(tasks, run_s)
    finally:
        await node.close()
    lines = [json.dumps(record) for record in node.records]
    lines.append(json.dumps({"summary": {"node": name} | asdict(node.tally)}))
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    url, prefix, name, mode, agents, tasks, run_s = sys.argv[1:]
    asyncio.run(main(url, prefix, name, mode, int(agents), int(tasks), float(run_s)))
