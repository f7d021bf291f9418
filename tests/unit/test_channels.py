"""The live-channel picture is rebuilt after a reconnect: channels that ended meanwhile disappear."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from cti.ami import AmiClient
from cti.channels import ChannelTracker
from cti.settings import AmiSettings
from tests.fakes.ami_peer import AmiPeer, wait_until


@pytest.fixture
async def peer() -> AsyncIterator[AmiPeer]:
    ami_peer = AmiPeer()
    ami_peer.channels = [{"Channel": "PJSIP/caller-0001", "Uniqueid": "1.1", "CallerIDNum": "0611",
                          "ChannelStateDesc": "Up", "Linkedid": "1.1"}]
    await ami_peer.start()
    yield ami_peer
    await ami_peer.close()


@pytest.fixture
async def tracked(peer: AmiPeer) -> AsyncIterator[tuple[AmiClient, ChannelTracker]]:
    client = AmiClient(AmiSettings(port=peer.port, secret=peer.secret, reconnect_min=0.01, reconnect_max=0.05))
    tracker = ChannelTracker(client)
    await client.start()
    await client.wait_connected(5)
    await wait_until(lambda: tracker.resyncs == 1)
    yield client, tracker
    await client.stop()


async def test_first_login_lists_live_channels(tracked: tuple[AmiClient, ChannelTracker]) -> None:
    _, tracker = tracked
    assert tracker.live["1.1"].caller_number == "0611"
    assert tracker.live["1.1"].state == "Up"


async def test_events_add_and_remove_channels(peer: AmiPeer, tracked: tuple[AmiClient, ChannelTracker]) -> None:
    _, tracker = tracked
    await peer.emit({"Event": "Newchannel", "Uniqueid": "2.2", "Channel": "Local/5551000@from-pstn-0001;2",
                     "CallerIDNum": "0622", "ChannelStateDesc": "Down"})
    await wait_until(lambda: "2.2" in tracker.live)
    await peer.emit({"Event": "Hangup", "Uniqueid": "1.1", "Channel": "PJSIP/caller-0001"})
    await wait_until(lambda: "1.1" not in tracker.live)
    assert set(tracker.live) == {"2.2"}


async def test_reconnect_replaces_the_picture(peer: AmiPeer, tracked: tuple[AmiClient, ChannelTracker]) -> None:
    _, tracker = tracked
    peer.channels = [{"Channel": "PJSIP/agent1-0002", "Uniqueid": "3.3", "ChannelStateDesc": "Ringing"}]
    await peer.drop()  # the Hangup of 1.1 is "lost" with the link
    await wait_until(lambda: tracker.resyncs == 2)
    assert set(tracker.live) == {"3.3"}
