"""Reads and writes the ACD's agents, queues and agents' live state.

Everything written is checked first (:mod:`cti.acd.config`): a queue against every stored queue (what it
borrows from and overflows to must exist), a whole document against itself; a refusal writes nothing.
Writes that check queues against each other lock the stored queues first (PostgreSQL), so two admins
saving at once cannot together leave a reference dangling.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from cti.acd.config import (
    AcdConfigInvalid,
    AcdDocument,
    AgentConfig,
    EndpointInvalid,
    QueueConfig,
    check_references,
    dump_document,
    dump_queue,
    normalise_endpoint,
    parse_document,
    references_to,
)
from cti.acd.model import AgentState
from cti.acd.models import AcdAgent, AcdAgentStatus, AcdQueue
from cti.db import Database
from cti.errors import CtiError
from cti.ivr.documents import load_yaml
from cti.ivr.errors import DocumentInvalid

MAX_REASON = 80
MAX_CALL_ID = 64  # a uniqueid ("1732350000.42"); the column is as wide


class AgentNotFound(CtiError):
    code = "acd.agent_not_found"


class QueueNotFound(CtiError):
    code = "acd.queue_not_found"


@dataclass(frozen=True)
class StatusRow:
    """An agent's last known state; ``reason`` goes with ``paused``, ``endpoint`` is where it logged in,
    ``call`` the call a ringing or talking agent had (the caller channel's uniqueid)."""

    agent_id: str
    state: AgentState
    reason: str | None
    endpoint: str
    since: datetime
    call: str = ""


def read_yaml(text: str) -> Any:
    """The project's one YAML reader (safe, size-limited), its refusals reported as ACD errors."""
    try:
        return load_yaml(text)
    except DocumentInvalid as exc:
        raise AcdConfigInvalid(exc.errors) from None


class AcdStore:
    """The ACD configuration in the database; every method is one transaction."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # --- agents ------------------------------------------------------------------------------------

    async def list_agents(self) -> list[AgentConfig]:
        async with self.db.session() as session:
            return [_agent(row) for row in await session.scalars(select(AcdAgent).order_by(AcdAgent.id))]

    async def get_agent(self, agent_id: str) -> AgentConfig:
        async with self.db.session() as session:
            row = await _agent_row(session, agent_id)
            return _agent(row)

    async def put_agent(self, agent: AgentConfig) -> AgentConfig:
        """Creates or replaces the agent (its live status, if any, stays)."""
        async with self.db.session() as session:
            await _write_agent(session, agent)
        return agent

    async def delete_agent(self, agent_id: str) -> None:
        """Its status goes with it (ON DELETE CASCADE)."""
        async with self.db.session() as session:
            row = await _agent_row(session, agent_id)
            await session.delete(row)

    # --- queues ------------------------------------------------------------------------------------

    async def list_queues(self) -> list[QueueConfig]:
        async with self.db.session() as session:
            return [_queue(row) for row in await session.scalars(select(AcdQueue).order_by(AcdQueue.name))]

    async def get_queue(self, name: str) -> QueueConfig:
        async with self.db.session() as session:
            row = await _queue_row(session, name)
            return _queue(row)

    async def put_queue(self, queue: QueueConfig) -> QueueConfig:
        """Creates or replaces the queue once its references to the stored queues check out."""
        async with self.db.session() as session:
            rows = await _locked_queues(session)
            others = [_queue(row) for row in rows.values() if row.name != queue.name]
            errors = check_references([*others, queue])
            if errors:
                raise AcdConfigInvalid(errors)
            _write_queue(session, rows.get(queue.name), queue)
        return queue

    async def delete_queue(self, name: str) -> None:
        """Refused while another queue borrows from it or overflows to it: that queue changes first."""
        async with self.db.session() as session:
            rows = await _locked_queues(session)
            if name not in rows:
                raise QueueNotFound(f"no queue {name!r}")
            users = references_to(name, [_queue(row) for row in rows.values()])
            if users:
                raise AcdConfigInvalid([f"queue {name!r} is still used: {user}" for user in users])
            await session.delete(rows[name])

    # --- the whole configuration -------------------------------------------------------------------

    async def import_document(self, data: Any) -> AcdDocument:
        """Replaces the whole configuration (agents and queues absent from it are removed, with their
        statuses); checked entirely first, then written in one transaction: all or nothing."""
        document = parse_document(data)
        async with self.db.session() as session:
            rows = await _locked_queues(session)
            keep_agents = [agent.id for agent in document.agents]
            await session.execute(delete(AcdAgent).where(AcdAgent.id.not_in(keep_agents)))
            for agent in document.agents:
                await _write_agent(session, agent)
            for name in rows.keys() - {queue.name for queue in document.queues}:
                await session.delete(rows[name])
            for queue in document.queues:
                _write_queue(session, rows.get(queue.name), queue)
        return document

    async def export_document(self) -> dict[str, Any]:
        """The configuration as a document that imports back to the same configuration."""
        return dump_document(AcdDocument(tuple(await self.list_agents()), tuple(await self.list_queues())))

    # --- live state --------------------------------------------------------------------------------

    async def load_statuses(self) -> dict[str, StatusRow]:
        async with self.db.session() as session:
            rows = await session.scalars(select(AcdAgentStatus).order_by(AcdAgentStatus.agent_id))
            return {row.agent_id: _status(row) for row in rows}

    async def save_status(self, agent_id: str, state: str, reason: str | None, endpoint: str, since: datetime,
                          call: str = "") -> None:
        """``state`` is an AgentState value, ``endpoint`` a dial target (it is dialled again after a restart)."""
        status = _checked_status(agent_id, state, reason, endpoint, since, call)
        async with self.db.session() as session:
            await _agent_row(session, agent_id)
            row = await session.get(AcdAgentStatus, agent_id)
            if row is None:
                row = AcdAgentStatus(agent_id=agent_id)
                session.add(row)
            row.state, row.reason, row.endpoint, row.since = status.state.value, reason, status.endpoint, since
            row.call = status.call

    async def delete_status(self, agent_id: str) -> None:
        """Forgets the agent's state (none stored is not an error: the agent is simply logged out)."""
        async with self.db.session() as session:
            await session.execute(delete(AcdAgentStatus).where(AcdAgentStatus.agent_id == agent_id))


async def _locked_queues(session: AsyncSession) -> dict[str, AcdQueue]:
    """Every stored queue, locked until the transaction ends (SQLite has no row locks: its writes queue)."""
    rows = await session.scalars(select(AcdQueue).order_by(AcdQueue.name).with_for_update())
    return {row.name: row for row in rows}


async def _write_agent(session: AsyncSession, agent: AgentConfig) -> None:
    row = await session.get(AcdAgent, agent.id)
    if row is None:
        row = AcdAgent(id=agent.id)
        session.add(row)
    row.name, row.team, row.skills, row.endpoint = agent.name, agent.team, dict(agent.skills), agent.endpoint


def _write_queue(session: AsyncSession, row: AcdQueue | None, queue: QueueConfig) -> None:
    if row is None:
        session.add(AcdQueue(name=queue.name, document=dump_queue(queue)))
    else:
        row.document = dump_queue(queue)


async def _agent_row(session: AsyncSession, agent_id: str) -> AcdAgent:
    row = await session.get(AcdAgent, agent_id)
    if row is None:
        raise AgentNotFound(f"no agent {agent_id!r}")
    return row


async def _queue_row(session: AsyncSession, name: str) -> AcdQueue:
    row = await session.get(AcdQueue, name)
    if row is None:
        raise QueueNotFound(f"no queue {name!r}")
    return row


def _agent(row: AcdAgent) -> AgentConfig:
    return AgentConfig.model_validate(
        {"id": row.id, "name": row.name, "team": row.team, "skills": row.skills, "endpoint": row.endpoint}
    )


def _queue(row: AcdQueue) -> QueueConfig:
    return QueueConfig.model_validate(row.document)


def _status(row: AcdAgentStatus) -> StatusRow:
    return StatusRow(row.agent_id, AgentState(row.state), row.reason, row.endpoint, row.since, row.call or "")


def _checked_status(agent_id: str, state: str, reason: str | None, endpoint: str, since: datetime,
                    call: str = "") -> StatusRow:
    errors = []
    if state not in [member.value for member in AgentState]:
        errors.append(f"state: {state!r} is not one of {', '.join(AgentState)}")
    if reason is not None and len(reason) > MAX_REASON:
        errors.append(f"reason: longer than {MAX_REASON} characters")
    try:
        endpoint = normalise_endpoint(endpoint)
    except EndpointInvalid as exc:
        errors.append(f"endpoint: {exc}")
    if since.tzinfo is None:
        errors.append("since: an aware instant (with its UTC offset)")
    if len(call) > MAX_CALL_ID:
        errors.append(f"call: longer than {MAX_CALL_ID} characters")
    if errors:
        raise AcdConfigInvalid(errors)
    return StatusRow(agent_id, AgentState(state), reason, endpoint, since, call)
