"""A real SIP phone (baresip) registers, dials a service number over SIP/RTP and presses a key (RFC 4733)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from cti.agi import ScriptRegistry
from cti.db import Database
from cti.ivr.documents import import_document
from cti.prompts import PromptStore
from cti.scripts.incoming import IncomingCall
from tests.plugins.asterisk import sandbox_command
from tests.support.baresip import BaresipPhone
from tests.support.calls import finished_call
from tests.support.ivr import MONDAY_10, TEST_DESK, ivr_service

pytestmark = pytest.mark.real
CALLER_CTRL_PORT = 4440  # scripts/asterisk-sandbox.sh: caller, agent1, agent2 on 4440-4442
MENU_DELAY = 4.0  # answer (~0.5 s) + the greeting: the key is pressed while the menu prompt plays


@pytest.fixture
async def caller_phone() -> AsyncIterator[BaresipPhone]:
    sandbox_command("phones")
    phone = BaresipPhone("127.0.0.1", CALLER_CTRL_PORT)
    await phone.connect()
    yield phone
    await phone.command("hangup")
    await phone.close()


async def test_sip_call_reaches_the_incoming_flow_and_dtmf_is_read(
    caller_phone: BaresipPhone,
    agi_registry: ScriptRegistry,
    prompt_store: PromptStore,
    database: Database,
) -> None:
    ivr = ivr_service(database, prompt_store.root, MONDAY_10)
    await import_document(ivr, TEST_DESK, author="test")
    agi_registry.register("incoming")(IncomingCall(database, prompt_store, ivr))
    answer = await caller_phone.command("dial", f"sip:{TEST_DESK['number']}@127.0.0.1")
    assert answer.get("ok"), answer
    await caller_phone.wait_event("CALL_ESTABLISHED", timeout=10)
    await asyncio.sleep(MENU_DELAY)
    await caller_phone.command("sndcode", "1")
    row = await finished_call(database)
    assert row.caller_number == "caller"  # the SIP From user of the 'caller' endpoint
    assert row.called_number == TEST_DESK["number"]
    assert row.channel.startswith("PJSIP/caller-")
    assert row.outcome == "completed"
    assert row.path == "hours:open > welcome > main:1 > done"
