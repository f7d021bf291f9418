"""The AMI adapter against the real local Asterisk (``scripts/asterisk-sandbox.sh start``).

Credentials come from ``cti.settings.load_settings()`` (``CTI_AMI__USERNAME`` / ``CTI_AMI__SECRET`` or
``$CTI_CONFIG``). An unreachable AMI is a failure, never a skip.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import pytest
from panoramisk.message import Message

from cti.ami import AmiClient, AmiNotConnected
from cti.settings import load_settings

pytestmark = pytest.mark.real


@contextlib.asynccontextmanager
async def connected_client() -> AsyncIterator[AmiClient]:
    """Connect inside the test body, so an unreachable AMI shows as FAILED with the reason."""
    settings = load_settings().ami
    client = AmiClient(settings)
    await client.start()
    try:
        await client.wait_connected(settings.connect_timeout * 2)
    except AmiNotConnected as exc:
        await client.stop()
        pytest.fail(
            f"AMI at {settings.host}:{settings.port} unusable as {settings.username!r}: {exc}. "
            "Start Asterisk (scripts/asterisk-sandbox.sh start) and set CTI_AMI__USERNAME/CTI_AMI__SECRET."
        )
    try:
        yield client
    finally:
        await client.stop()


async def test_ping_list_and_user_event_round_trip() -> None:
    async with connected_client() as ami:
        assert (await ami.send_action({"Action": "Ping"})).response == "Success"
        channels = await ami.send_list_action({"Action": "CoreShowChannels"})
        assert all(event.event == "CoreShowChannel" for event in channels)
        event = await user_event_round_trip(ami)
    assert event.userevent == "ctitest"


async def user_event_round_trip(ami: AmiClient) -> Message:
    """Send a UserEvent with a unique Id and wait for Asterisk to broadcast it back to us."""
    marker = uuid.uuid4().hex
    received: asyncio.Future[Message] = asyncio.get_running_loop().create_future()

    def on_user_event(event: Message) -> None:
        if event.get("Id") == marker and not received.done():
            received.set_result(event)

    remove = ami.on_event("UserEvent", on_user_event)
    try:
        await ami.send_action({"Action": "UserEvent", "UserEvent": "ctitest", "Id": marker})
        return await asyncio.wait_for(received, 5.0)
    except TimeoutError:
        pytest.fail("UserEvent sent but never received back: does the AMI user have read = user?")
    finally:
        remove()
