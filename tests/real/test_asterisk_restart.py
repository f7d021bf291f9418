"""Asterisk restarts under us: the AMI link comes back by itself, state is resynced, calls work again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from cti.ami import AmiClient
from cti.channels import ChannelTracker
from cti.settings import Settings
from tests.fakes.ami_peer import wait_until
from tests.plugins.asterisk import EventLog, place_simulated_call, sandbox_command

pytestmark = pytest.mark.real


@pytest.fixture
async def quick_ami(real_settings: Settings) -> AsyncIterator[AmiClient]:
    """Short reconnect bounds, so the test waits for Asterisk's boot rather than for the backoff."""
    settings = real_settings.ami.model_copy(update={"reconnect_min": 0.2, "reconnect_max": 1.0,
                                                    "ping_interval": 1.0, "ping_timeout": 1.0})
    client = AmiClient(settings)
    yield client
    await client.stop()


async def test_link_resyncs_and_calls_work_after_a_restart(quick_ami: AmiClient) -> None:
    tracker = ChannelTracker(quick_ami)
    connected = asyncio.Event()
    quick_ami.on_connected(connected.set)
    await quick_ami.start()
    await quick_ami.wait_connected(10)
    await wait_until(lambda: tracker.resyncs == 1, within=10)
    connected.clear()

    await asyncio.to_thread(sandbox_command, "restart")

    await asyncio.wait_for(connected.wait(), 30)
    await wait_until(lambda: tracker.resyncs == 2, within=10)
    assert quick_ami.stats.reconnects >= 1
    events = EventLog()
    quick_ami.on_event("*", events.add)
    action_id = await place_simulated_call(quick_ami, "5559999", "0699000000", hold=2)
    response = await quick_ami.wait_originate_response(action_id, 20)
    assert response.get("Response") == "Success"
    await events.wait_for("Hangup", timeout=30, CallerIDNum="0699000000")
