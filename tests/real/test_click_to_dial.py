"""Click-to-dial through the real Asterisk: the agent's phone is rung first, and once it answers Asterisk dials
the typed number through the agents' outgoing context, the one their own phones use."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from cti.acd.model import AgentState
from cti.acd.service import AcdService
from cti.acd.shared import AgentBoard
from cti.acd.store import AcdStore
from cti.agents.dialer import OUTBOUND_PAUSE_REASON
from cti.agents.wiring import Desktop, build_desktop
from cti.ami import AmiClient
from cti.ami.errors import AmiActionFailed
from cti.asterisk_config import AGENTS_CONTEXT
from cti.contacts.directory import CallerDirectory
from cti.db import Database
from cti.demo import seed_acd_demo
from cti.settings import AgentsSettings, TicketSettings
from cti.state import InMemoryStateBackend
from tests.plugins.asterisk import EventLog
from tickets.service import TicketService


@pytest.fixture
async def desktop(ami: AmiClient, database: Database) -> AsyncIterator[Desktop]:
    store = AcdStore(database)
    await seed_acd_demo(store)
    state = InMemoryStateBackend()
    acd = AcdService(store, AgentBoard(state), state, database, ami)
    await acd.reload()
    built = build_desktop(AgentsSettings(), db=database, state=state, ami=ami, acd=acd,
                          tickets=TicketService(database, TicketSettings()),
                          directory=CallerDirectory(database, "FR"))
    yield built


async def test_click_to_dial_rings_the_agent_then_dials_the_number_from_the_agents_context(
    desktop: Desktop, ami: AmiClient, ami_events: EventLog
) -> None:
    desk = desktop.desk
    await desk.login("chloe", "Local/chloe@cti-agent-sim")
    result: dict[str, Any] = await desk.dial("chloe", "06 12-34.56 78")
    assert (result["number"], result["endpoint"], result["paused"]) == ("0612345678", "Local/chloe@cti-agent-sim",
                                                                        True)
    status = await desk.acd.board.get("chloe")
    assert (status.state, status.reason) == (AgentState.PAUSED, OUTBOUND_PAUSE_REASON)

    response = await ami.wait_originate_response(result["action_id"], 20)
    assert response.get("Response") == "Success"  # the agent's (simulated) phone answered
    dialled = await ami_events.wait_for("Newexten", timeout=20, Context=AGENTS_CONTEXT, Extension="0612345678",
                                        Application="Dial")
    assert dialled["AppData"].startswith("PJSIP/0612345678@")  # out through the trunk, like the agent's phone
    agent_leg = dialled["Channel"]
    assert agent_leg.startswith("Local/chloe@cti-agent-sim")
    with contextlib.suppress(AmiActionFailed):  # the trunk refused the number: the call may be over already
        await ami.send_action({"Action": "Hangup", "Channel": agent_leg})
