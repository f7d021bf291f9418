"""The ACD store on SQLite and PostgreSQL: agents and queues round trip, references between queues hold,
a whole document is written all or nothing, agents' statuses survive, and the demo seeds once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import func, select

from cti.acd.config import AcdConfigInvalid, AgentConfig, dump_agent, dump_queue, parse_agent, parse_queue
from cti.acd.model import AgentState
from cti.acd.models import AcdAgent, AcdAgentStatus, AcdQueue
from cti.acd.store import AcdStore, AgentNotFound, QueueNotFound, StatusRow, read_yaml
from cti.db import Database
from cti.db.models import CallRecord
from cti.demo import seed_acd_demo
from tests.support.acd import ALICE, BILLING_DOC, SUPPORT_DOC

BOB: dict[str, Any] = {
    "id": "bob",
    "name": "Bob",
    "team": "billing",
    "skills": {"billing": 4},
    "endpoint": "Local/bob@cti-agent-sim",
}
SUPPORT: dict[str, Any] = {**SUPPORT_DOC, "overflow": "queue:billing"}
BILLING = BILLING_DOC
DOCUMENT: dict[str, Any] = {"agents": [ALICE, BOB], "queues": [SUPPORT, BILLING]}
SINCE = datetime(2026, 11, 23, 10, 0, tzinfo=timezone(timedelta(hours=1)))


async def count(database: Database, model: Any) -> int:
    async with database.session() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def configured(database: Database) -> AcdStore:
    store = AcdStore(database)
    await store.import_document(DOCUMENT)
    return store


def refused(caught: pytest.ExceptionInfo[AcdConfigInvalid]) -> list[str]:
    return caught.value.errors


# --- agents ----------------------------------------------------------------------------------------


async def test_agents_round_trip(database: Database) -> None:
    store = AcdStore(database)
    assert await store.list_agents() == []
    assert await store.put_agent(parse_agent({**ALICE, "endpoint": "agent1"})) == parse_agent(ALICE)
    await store.put_agent(parse_agent(BOB))
    assert [dump_agent(agent) for agent in await store.list_agents()] == [ALICE, BOB]
    assert await store.get_agent("bob") == parse_agent(BOB)


async def test_put_replaces_an_agent(database: Database) -> None:
    store = AcdStore(database)
    await store.put_agent(parse_agent(ALICE))
    async with database.session() as session:
        created = (await session.get_one(AcdAgent, "alice")).created_at
    await store.put_agent(AgentConfig(id="alice", name="Alice M.", skills={"software": 2}))
    assert await store.get_agent("alice") == AgentConfig(id="alice", name="Alice M.", skills={"software": 2})
    async with database.session() as session:
        row = await session.get_one(AcdAgent, "alice")
    assert row.created_at == created and row.updated_at >= created
    assert row.created_at.tzinfo is UTC


async def test_unknown_agents(database: Database) -> None:
    store = AcdStore(database)
    with pytest.raises(AgentNotFound, match="no agent 'zoe'"):
        await store.get_agent("zoe")
    with pytest.raises(AgentNotFound, match="no agent 'zoe'"):
        await store.delete_agent("zoe")


async def test_deleting_an_agent_removes_its_status(database: Database) -> None:
    store = await configured(database)
    await store.save_status("alice", "paused", "lunch", "PJSIP/agent1", SINCE)
    await store.delete_agent("alice")
    assert [agent.id for agent in await store.list_agents()] == ["bob"]
    assert await store.load_statuses() == {}


# --- queues ----------------------------------------------------------------------------------------


async def test_queues_round_trip(database: Database) -> None:
    store = AcdStore(database)
    await store.put_queue(parse_queue(BILLING))
    await store.put_queue(parse_queue(SUPPORT))
    assert [queue.name for queue in await store.list_queues()] == ["billing", "support"]
    assert await store.get_queue("support") == parse_queue(SUPPORT)
    async with database.session() as session:
        row = await session.get_one(AcdQueue, "support")
    assert row.document == dump_queue(parse_queue(SUPPORT))
    await store.put_queue(parse_queue({**SUPPORT, "wrap_up_s": 5}))
    assert (await store.get_queue("support")).wrap_up_s == 5


async def test_a_queue_referring_to_a_missing_queue_is_refused_and_not_saved(database: Database) -> None:
    store = AcdStore(database)
    with pytest.raises(AcdConfigInvalid) as caught:
        await store.put_queue(parse_queue(SUPPORT))
    assert refused(caught) == [
        "queue 'support': steps.1.borrow: no queue 'billing'",
        "queue 'support': overflow: no queue 'billing'",
    ]
    assert await store.list_queues() == []


async def test_a_change_that_closes_an_overflow_loop_is_refused(database: Database) -> None:
    store = await configured(database)
    with pytest.raises(AcdConfigInvalid) as caught:
        await store.put_queue(parse_queue({**BILLING, "overflow": "queue:support"}))
    assert refused(caught) == ["queue 'billing': overflow: the chain billing -> support -> billing loops"]
    assert (await store.get_queue("billing")).overflow == "voicemail"


async def test_a_queue_in_use_cannot_be_deleted(database: Database) -> None:
    store = await configured(database)
    with pytest.raises(AcdConfigInvalid) as caught:
        await store.delete_queue("billing")
    assert refused(caught) == [
        "queue 'billing' is still used: queue 'support' borrows from it (steps.1.borrow)",
        "queue 'billing' is still used: queue 'support' overflows to it (overflow)",
    ]
    assert [queue.name for queue in await store.list_queues()] == ["billing", "support"]
    await store.delete_queue("support")
    await store.delete_queue("billing")
    assert await store.list_queues() == []
    with pytest.raises(QueueNotFound, match="no queue 'billing'"):
        await store.delete_queue("billing")
    with pytest.raises(QueueNotFound, match="no queue 'billing'"):
        await store.get_queue("billing")


# --- the whole document ----------------------------------------------------------------------------


async def test_export_then_import_gives_the_same_document(database: Database) -> None:
    store = await configured(database)
    exported = await store.export_document()
    assert [agent["id"] for agent in exported["agents"]] == ["alice", "bob"]
    assert [queue["name"] for queue in exported["queues"]] == ["billing", "support"]
    assert exported["queues"][1] == dump_queue(parse_queue(SUPPORT))
    await store.import_document(exported)
    assert await store.export_document() == exported


async def test_an_import_replaces_everything(database: Database) -> None:
    store = await configured(database)
    await store.save_status("alice", "available", None, "PJSIP/agent1", SINCE)
    await store.save_status("bob", "available", None, "PJSIP/agent2", SINCE)
    document = await store.import_document(
        {"agents": [{**BOB, "name": "Robert"}, {"id": "chloe", "name": "Chloe"}], "queues": [BILLING]}
    )
    assert [agent.id for agent in document.agents] == ["bob", "chloe"]
    assert [(agent.id, agent.name) for agent in await store.list_agents()] == [("bob", "Robert"), ("chloe", "Chloe")]
    assert [queue.name for queue in await store.list_queues()] == ["billing"]
    assert list(await store.load_statuses()) == ["bob"]  # alice's went with her


@pytest.mark.parametrize(
    ("document", "errors"),
    [
        (
            {**DOCUMENT, "queues": [SUPPORT]},
            ["queue 'support': steps.1.borrow: no queue 'billing'", "queue 'support': overflow: no queue 'billing'"],
        ),
        (
            {**DOCUMENT, "agents": [ALICE, {**BOB, "endpoint": "PJSIP/bob&PJSIP/eve"}]},
            [
                "agents.1.endpoint: 'PJSIP/bob&PJSIP/eve' is not a dial target ('&' not allowed): write PJSIP/<name>, "
                "Local/<exten>@<context> or a bare endpoint name"
            ],
        ),
        ({"agents": []}, ["queues: missing (the document replaces the whole configuration: write [] for none)"]),
    ],
)
async def test_a_refused_import_changes_nothing(database: Database, document: Any, errors: list[str]) -> None:
    store = await configured(database)
    await store.save_status("alice", "paused", "lunch", "PJSIP/agent1", SINCE)
    before = await store.export_document()
    with pytest.raises(AcdConfigInvalid) as caught:
        await store.import_document(document)
    assert refused(caught) == errors
    assert await store.export_document() == before
    assert list(await store.load_statuses()) == ["alice"]


def test_yaml_is_read_by_the_projects_one_reader() -> None:
    assert read_yaml("agents: []\nqueues: []\n") == {"agents": [], "queues": []}
    with pytest.raises(AcdConfigInvalid) as caught:
        read_yaml("agents: [\n")
    assert caught.value.code == "acd.config_invalid"
    assert refused(caught)[0].startswith("document: not valid YAML (")


# --- agents' statuses ------------------------------------------------------------------------------


async def test_statuses_round_trip(database: Database) -> None:
    store = await configured(database)
    assert await store.load_statuses() == {}
    await store.save_status("alice", AgentState.PAUSED, "lunch", "agent1", SINCE)
    await store.save_status("bob", "available", None, "Local/bob@cti-agent-sim", SINCE)
    statuses = await store.load_statuses()
    assert statuses == {
        "alice": StatusRow("alice", AgentState.PAUSED, "lunch", "PJSIP/agent1", SINCE),
        "bob": StatusRow("bob", AgentState.AVAILABLE, None, "Local/bob@cti-agent-sim", SINCE),
    }
    assert statuses["alice"].since.tzinfo is UTC
    await store.save_status("alice", "available", None, "PJSIP/agent9", SINCE + timedelta(minutes=30))
    assert (await store.load_statuses())["alice"] == StatusRow(
        "alice", AgentState.AVAILABLE, None, "PJSIP/agent9", SINCE + timedelta(minutes=30)
    )
    await store.save_status("alice", "on_call", None, "PJSIP/agent9", SINCE, call="1732350000.42")
    assert (await store.load_statuses())["alice"].call == "1732350000.42"  # who may still be talking after a restart
    await store.save_status("alice", "available", None, "PJSIP/agent9", SINCE)
    assert (await store.load_statuses())["alice"].call == ""
    await store.delete_status("alice")
    await store.delete_status("alice")  # nothing stored is the same as logged out
    assert list(await store.load_statuses()) == ["bob"]
    assert await count(database, AcdAgentStatus) == 1


async def test_refused_statuses(database: Database) -> None:
    store = await configured(database)
    with pytest.raises(AcdConfigInvalid) as caught:
        await store.save_status("alice", "asleep", "x" * 81, "PJSIP/a,b", datetime(2026, 11, 23, 10))
    assert refused(caught) == [
        "state: 'asleep' is not one of logged_out, available, ringing, on_call, wrap_up, paused",
        "reason: longer than 80 characters",
        "endpoint: 'PJSIP/a,b' is not a dial target (',' not allowed): write PJSIP/<name>, "
        "Local/<exten>@<context> or a bare endpoint name",
        "since: an aware instant (with its UTC offset)",
    ]
    with pytest.raises(AgentNotFound, match="no agent 'zoe'"):
        await store.save_status("zoe", "available", None, "PJSIP/agent1", SINCE)
    assert await store.load_statuses() == {}


# --- call records and demo -------------------------------------------------------------------------


async def test_call_records_hold_the_acd_part(database: Database) -> None:
    async with database.session() as session:
        session.add(
            CallRecord(
                uniqueid="1.1",
                channel="PJSIP/x-1",
                queue="support",
                agent_id="alice",
                enqueued_at=SINCE,
                answered_at=SINCE + timedelta(seconds=42),
                wait_s=42.5,
                talk_s=120.25,
            )
        )
    async with database.session() as session:
        row = (await session.scalars(select(CallRecord))).one()
    assert (row.queue, row.agent_id, row.wait_s, row.talk_s) == ("support", "alice", 42.5, 120.25)
    assert row.answered_at == SINCE + timedelta(seconds=42)


async def test_the_demo_is_seeded_once_and_never_over_an_admins_agents(database: Database) -> None:
    store = AcdStore(database)
    assert await seed_acd_demo(store) == 3
    assert [agent.id for agent in await store.list_agents()] == ["alice", "bob", "chloe"]
    assert [queue.name for queue in await store.list_queues()] == ["billing", "support"]
    await store.delete_agent("chloe")
    assert await seed_acd_demo(store) == 0
    assert await count(database, AcdAgent) == 2
