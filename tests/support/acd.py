"""Live-ACD test helpers: clocks the test moves, a desk (an AcdService on a test database with in-process
shared state and no AMI), callers joining a queue with their call row, and agents and queues to configure.

Without AMI, holding sessions poll; the tests run routing passes themselves (``Desk.route``) instead of
letting the dispatcher's timer do it, so nothing depends on real time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from cti.acd.calls import QueuedCall
from cti.acd.config import AgentConfig, QueueConfig
from cti.acd.service import AcdService
from cti.acd.shared import AgentBoard, AgentStatus
from cti.acd.store import AcdStore
from cti.call_records import open_call
from cti.db import Database
from cti.db.base import utcnow
from cti.db.models import CallRecord
from cti.state import InMemoryStateBackend

MONO_T0 = 5_000.0  # monotonic seconds at the start of a test (nothing assumes 0)
WALL_T0 = 1_700_000_000.0  # epoch seconds at the start of a test
NODE = "node-test"

# Configuration documents as an admin writes them (cti/acd/config.py parses them)
ALICE: dict[str, Any] = {
    "id": "alice",
    "name": "Alice",
    "team": "support",
    "skills": {"network": 5, "lang-fr": 5},
    "endpoint": "PJSIP/agent1",
}
SUPPORT_DOC: dict[str, Any] = {
    "name": "support",
    "skills": {"software": 1},
    "steps": [{"after_s": 60, "level_delta": 1}, {"after_s": 120, "borrow": ["billing"]}],
    "max_wait_s": 300,
}
BILLING_DOC: dict[str, Any] = {"name": "billing", "skills": {"billing": 1}, "max_wait_s": 300}


class Clocks:
    """The ACD's monotonic clock and the agent board's wall clock, moved together by ``advance``."""

    def __init__(self, mono: float = MONO_T0, wall: float = WALL_T0) -> None:
        self.mono = mono
        self.wall_now = wall

    def monotonic(self) -> float:
        return self.mono

    def wall(self) -> float:
        return self.wall_now

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        self.wall_now += seconds


def agent(agent_id: str, endpoint: str = "", team: str = "", **skills: int) -> AgentConfig:
    """``agent("alice", "PJSIP/agent1", software=5)``; without an endpoint, ``PJSIP/<id>``."""
    return AgentConfig(
        id=agent_id, name=agent_id.title(), team=team, skills=skills, endpoint=endpoint or f"PJSIP/{agent_id}"
    )


def queue(name: str = "support", **options: Any) -> QueueConfig:
    """A queue needing ``software`` at level 1 unless ``skills`` says otherwise."""
    return QueueConfig.model_validate({"name": name, "label": name.title(), "skills": {"software": 1}, **options})


SUPPORT_AGENTS = (
    agent("alice", "PJSIP/agent1", software=5),
    agent("bob", "PJSIP/agent2", software=2),
    agent("carol", "PJSIP/agent3", software=1),
)


@dataclass
class Desk:
    """An ACD on a test database; ``acd`` is replaced by ``restart``."""

    acd: AcdService
    store: AcdStore
    db: Database
    clock: Clocks
    state: InMemoryStateBackend
    joined: int = 0

    async def route(self) -> None:
        """One routing pass now (what the dispatcher does on every change and tick)."""
        await self.acd._pass()

    async def join(
        self,
        queue_name: str = "support",
        *,
        priority: int = 0,
        caller: str = "",
        skills: dict[str, int] | None = None,
        preferred: str | None = None,
        uniqueid: str | None = None,
    ) -> QueuedCall:
        """A caller joins ``queue_name`` now, with the call row the incoming script would have opened."""
        self.joined += 1
        uid = uniqueid or f"1732350000.{self.joined}"
        number = caller or f"06000000{self.joined:02d}"
        await open_call(
            self.db,
            CallRecord(
                uniqueid=uid,
                channel=f"PJSIP/trunk-{self.joined:04d}",
                caller_number=number,
                outcome="queued",
                path="welcome",
            ),
        )
        call = QueuedCall(
            id=uid,
            channel=f"PJSIP/trunk-{self.joined:04d}",
            queue=queue_name,
            priority=priority,
            arrived_at=self.clock.monotonic(),
            joined=utcnow(),
            caller=number,
            skills=skills,
            preferred_agent=preferred,
        )
        return await self.acd.enqueue(call)

    def status(self, agent_id: str) -> AgentStatus:
        return self.acd.statuses.get(agent_id, AgentStatus(agent_id))

    async def board_status(self, agent_id: str) -> AgentStatus:
        """The shared truth (the service's mirror must agree with it)."""
        return await self.acd.board.get(agent_id)

    async def row(self, call: QueuedCall | str) -> CallRecord:
        uid = call if isinstance(call, str) else call.id
        async with self.db.session() as session:
            found = (await session.scalars(select(CallRecord).where(CallRecord.uniqueid == uid))).first()
        assert found is not None, f"no row for call {uid}"
        return found

    async def connect(self, call: QueuedCall, status: str = "ANSWER", *, talk_s: float = 0.0) -> bool:
        """The holding session dials the assigned agent; the Dial returns ``status`` after ``talk_s``."""
        self.acd.start_dialing(call)
        if status == "ANSWER":
            await self.acd.answered(call)
            self.clock.advance(talk_s)
        return await self.acd.dial_ended(call, status)

    async def restart(self) -> AcdService:
        """Another server process on the same database: fresh shared state, nothing in memory."""
        self.state = InMemoryStateBackend(clock=self.clock.monotonic)
        self.acd = new_service(self.store, self.db, self.state, self.clock)
        return self.acd


def new_service(store: AcdStore, db: Database, state: InMemoryStateBackend, clock: Clocks) -> AcdService:
    """No AMI; one in-process backend is both the board's store and the feed the service follows."""
    board = AgentBoard(state, wall_clock=clock.wall)
    return AcdService(store, board, state, db, None, node_id=NODE, monotonic=clock.monotonic)


async def make_desk(
    db: Database,
    queues: tuple[QueueConfig, ...] = (),
    agents: tuple[AgentConfig, ...] = SUPPORT_AGENTS,
    clock: Clocks | None = None,
    state: InMemoryStateBackend | None = None,
) -> Desk:
    """The configuration stored, then loaded by a service that is not started (passes are run by hand);
    without ``queues``, one ``support`` queue with the defaults."""
    store = AcdStore(db)
    for agent_config in agents:
        await store.put_agent(agent_config)
    for queue_config in queues or (queue(),):
        await store.put_queue(queue_config)
    clock = clock or Clocks()
    state = state or InMemoryStateBackend(clock=clock.monotonic)
    acd = new_service(store, db, state, clock)
    await acd.reload()
    await acd._seed_statuses()
    return Desk(acd, store, db, clock, state)


async def add_answered_call(db: Database, caller: str, agent_id: str, uniqueid: str) -> None:
    """A finished call of ``caller`` that ``agent_id`` answered (what makes that agent preferred)."""
    now = utcnow()
    await open_call(
        db,
        CallRecord(
            uniqueid=uniqueid,
            channel="PJSIP/trunk-old",
            caller_number=caller,
            queue="support",
            agent_id=agent_id,
            answered_at=now,
            ended_at=now,
            outcome="answered",
        ),
    )
