"""AMI adapter against the scripted peer: one test (at least) per panoramisk 1.4 defect we fix."""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from panoramisk.message import Message

from cti.ami import (
    AmiActionFailed,
    AmiActionTimeout,
    AmiBadAction,
    AmiClient,
    AmiDisconnected,
    AmiNotConnected,
    AmiProtocol,
    AmiUnknownAction,
    Backoff,
)
from cti.settings import AmiSettings
from tests.fakes.ami_peer import AmiPeer, wait_until

NAME = "Hélène Müller"


def make_settings(port: int, **override: Any) -> AmiSettings:
    values: dict[str, Any] = {
        "port": port,
        "username": "cti",
        "secret": "s3cret",
        "connect_timeout": 1.0,
        "action_timeout": 1.0,
        "ping_interval": 0.2,
        "ping_timeout": 0.5,
        "reconnect_min": 0.01,
        "reconnect_max": 0.05,
    }
    return AmiSettings.model_validate(values | override)


def free_port() -> int:
    """A port nobody listens on (bound then released), for connection-refused cases."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def peer() -> AsyncIterator[AmiPeer]:
    server = AmiPeer()
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def client(peer: AmiPeer) -> AsyncIterator[AmiClient]:
    ami = AmiClient(make_settings(peer.port))
    await ami.start()
    await ami.wait_connected(2.0)
    yield ami
    await ami.stop()


async def started(settings: AmiSettings, **kwargs: Any) -> AmiClient:
    ami = AmiClient(settings, **kwargs)
    await ami.start()
    return ami


# -- liveness and reconnection ----------------------------------------------------------------------


async def test_unanswered_ping_closes_the_link_and_reconnects(peer: AmiPeer) -> None:
    ami = await started(make_settings(peer.port, ping_interval=0.05, ping_timeout=0.05))
    try:
        await ami.wait_connected(2.0)
        peer.answer_pings = False
        await wait_until(lambda: peer.logins >= 2)
        assert ami.stats.ping_failures >= 1
        peer.answer_pings = True
        await ami.wait_connected(2.0)
        assert (await ami.send_action({"Action": "Ping"})).ping == "Pong"
    finally:
        await ami.stop()


def test_backoff_grows_exponentially_within_bounds_with_jitter() -> None:
    highest = Backoff(0.5, 30.0, uniform=lambda low, high: high)
    assert [highest.next_delay() for _ in range(8)] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    highest.reset()
    assert highest.next_delay() == 1.0
    jittered = Backoff(0.5, 30.0, uniform=random.Random(7).uniform)
    delays = [jittered.next_delay() for _ in range(50)]
    assert all(0.5 <= d <= jittered.ceiling(n) for n, d in enumerate(delays))
    assert len(set(delays)) > 40


async def test_reconnect_attempts_follow_the_backoff() -> None:
    asked: list[tuple[float, float]] = []

    def uniform(low: float, high: float) -> float:
        asked.append((low, high))
        return low

    settings = make_settings(free_port(), reconnect_min=0.01, reconnect_max=0.04)
    ami = await started(settings, backoff=Backoff(0.01, 0.04, uniform=uniform))
    try:
        await wait_until(lambda: len(asked) >= 4)
        assert asked[:4] == [(0.01, 0.02), (0.01, 0.04), (0.01, 0.04), (0.01, 0.04)]
        assert ami.stats.reconnects >= 3
        assert "ConnectionRefused" in (ami.stats.last_error or "")
        with pytest.raises(AmiNotConnected):
            await ami.send_action({"Action": "Ping"})
        with pytest.raises(AmiNotConnected, match="last error"):
            await ami.wait_connected(0.05)
    finally:
        await ami.stop()


async def test_on_connected_runs_again_after_a_reconnect(peer: AmiPeer, client: AmiClient) -> None:
    logins: list[int] = []
    resyncs: list[int] = []
    drops: list[bool] = []

    async def resync() -> None:
        resyncs.append(len(await client.send_list_action({"Action": "CoreShowChannels"})))

    client.on_connected(lambda: logins.append(peer.logins))
    client.on_connected(resync)
    client.on_disconnected(lambda: drops.append(client.connected))
    peer.channels = [{"Channel": "PJSIP/100-00000001"}]
    await peer.drop()
    await wait_until(lambda: len(resyncs) == 1)
    assert logins == [2]
    assert resyncs == [1]
    assert drops == [False]


async def test_shutdown_event_leads_to_a_reconnect(peer: AmiPeer, client: AmiClient) -> None:
    await peer.emit({"Event": "Shutdown", "Shutdown": "Cleanly", "Restart": "True"})
    await wait_until(lambda: peer.logins == 2 and client.connected)


async def test_login_failure_is_reported_and_retried(peer: AmiPeer) -> None:
    peer.secret = "another-secret"
    ami = await started(make_settings(peer.port))
    try:
        await wait_until(lambda: peer.login_attempts >= 3)
        assert not ami.connected
        assert ami.stats.login_failures >= 2
        assert "Authentication failed" in (ami.stats.last_error or "")
        assert "s3cret" not in (ami.stats.last_error or "")
        peer.secret = "s3cret"
        await ami.wait_connected(2.0)
    finally:
        await ami.stop()


# -- actions ----------------------------------------------------------------------------------------


async def test_pending_originate_fails_on_drop_and_is_never_replayed(
    peer: AmiPeer, client: AmiClient
) -> None:
    peer.answer_originates = False
    call = asyncio.create_task(client.originate("PJSIP/100", context="agents", exten="100"))
    await wait_until(lambda: peer.originate_count == 1)
    await peer.drop()
    with pytest.raises(AmiDisconnected):
        await call
    await wait_until(lambda: peer.logins == 2 and client.connected)
    await client.send_action({"Action": "Ping"})  # anything replayed would have arrived before this
    assert peer.originate_count == 1
    assert client.pending_count == 0


async def test_timeout_removes_the_action_from_the_pending_map(peer: AmiPeer, client: AmiClient) -> None:
    peer.script("Silent", [])
    with pytest.raises(AmiActionTimeout):
        await client.send_action({"Action": "Silent"}, timeout=0.05)
    assert client.pending_count == 0
    assert client.stats.timeouts == 1
    assert client.connected


async def test_error_response_raises_action_failed(client: AmiClient) -> None:
    with pytest.raises(AmiActionFailed) as caught:
        await client.send_action({"Action": "Bogus"})
    assert "Invalid/unknown command" in caught.value.response.message
    assert caught.value.code == "ami.failed"


@pytest.mark.parametrize(
    ("action", "message"),
    [("PlayDTMF", "DTMF successfully queued"), ("QueueAdd", "Added interface to queue")],
)
async def test_queued_style_replies_complete_without_dropping_the_link(
    peer: AmiPeer, client: AmiClient, action: str, message: str
) -> None:
    peer.script(action, [{"Response": "Success", "Message": message}])
    reply = await client.send_action({"Action": action, "Channel": "PJSIP/100-00000001", "Digit": "1"})
    assert reply.message == message
    assert client.connected and peer.logins == 1
    assert client.pending_count == 0


async def test_list_action_returns_the_item_events(peer: AmiPeer, client: AmiClient) -> None:
    peer.channels = [{"Channel": "PJSIP/100-00000001"}, {"Channel": "PJSIP/101-00000002"}]
    events = await client.send_list_action({"Action": "CoreShowChannels"})
    assert [e.channel for e in events] == ["PJSIP/100-00000001", "PJSIP/101-00000002"]
    assert await client.send_list_action({"Action": "CoreShowChannels"}, timeout=1.0) != []


async def test_list_action_error_raises_instead_of_hanging(peer: AmiPeer, client: AmiClient) -> None:
    peer.script("QueueStatus", [{"Response": "Error", "Message": "Permission denied"}])
    with pytest.raises(AmiActionFailed, match="Permission denied"):
        await client.send_list_action({"Action": "QueueStatus"})


async def test_originate_returns_when_queued_and_response_is_collectable(
    peer: AmiPeer, client: AmiClient
) -> None:
    peer.originate_response_delay = 0.05
    action_id = await client.originate(
        "PJSIP/100", context="agents", exten="100", caller_id=f'"{NAME}" <0612>', variables={"TICKET": "42"}
    )
    sent = peer.received[-1]
    assert (sent.get("ActionID"), sent.get("Async"), sent.get("CallerID")) == (
        action_id,
        "true",
        f'"{NAME}" <0612>',
    )
    assert sent.get_all("Variable") == ["TICKET=42"]
    result = await client.wait_originate_response(action_id, 2.0)
    assert result.response == "Success"
    with pytest.raises(AmiUnknownAction):
        await client.wait_originate_response("not-ours", 0.1)


async def test_originate_response_lost_with_the_link(peer: AmiPeer, client: AmiClient) -> None:
    peer.originate_response_delay = 30.0
    action_id = await client.originate("PJSIP/100", application="Playback", data="hello")
    await peer.drop()
    with pytest.raises(AmiDisconnected):
        await client.wait_originate_response(action_id, 2.0)


async def test_header_injection_is_refused(peer: AmiPeer, client: AmiClient) -> None:
    with pytest.raises(AmiBadAction):
        await client.originate("PJSIP/100", context="a", exten="1", caller_id="x\r\nAction: Hangup")
    with pytest.raises(AmiBadAction):
        await client.originate("PJSIP/100", exten="1")
    assert peer.originate_count == 0
    assert client.pending_count == 0


# -- events -----------------------------------------------------------------------------------------


async def test_failing_handlers_are_isolated(peer: AmiPeer, client: AmiClient) -> None:
    seen: list[str] = []

    def broken(event: Message) -> None:
        raise RuntimeError("handler bug")

    async def broken_async(event: Message) -> None:
        raise RuntimeError("async handler bug")

    async def good_async(event: Message) -> None:
        seen.append("async:" + event.userevent)

    client.on_event("UserEvent", broken)
    client.on_event("userevent", broken_async)
    client.on_event("User*", lambda event: seen.append("sync:" + event.userevent))
    client.on_event("*", good_async)
    await peer.emit({"Event": "UserEvent", "UserEvent": "one"})
    await wait_until(lambda: len(seen) == 2)
    assert sorted(seen) == ["async:one", "sync:one"]
    assert client.connected and peer.logins == 1
    assert (await client.send_action({"Action": "Ping"})).ping == "Pong"


async def test_unsubscribe_stops_delivery(peer: AmiPeer, client: AmiClient) -> None:
    seen: list[str] = []
    remove = client.on_event("UserEvent", lambda event: seen.append(event.userevent))
    await peer.emit({"Event": "UserEvent", "UserEvent": "one"})
    await wait_until(lambda: seen == ["one"])
    remove()
    await peer.emit({"Event": "UserEvent", "UserEvent": "two"})
    await client.send_action({"Action": "Ping"})
    assert seen == ["one"]


async def test_unknown_events_and_garbage_are_ignored(peer: AmiPeer, client: AmiClient) -> None:
    names: list[str] = []
    client.on_event("*", lambda event: names.append(event.event))
    await peer.emit({"Event": "TestEvent", "Type": "StateChange", "State": "Whatever"})
    await peer.emit_raw(b"no colon here\r\nActionID: nobody\r\n\r\nResponse: Success\r\nActionID: x\r\n\r\n")
    await peer.emit({"Event": "UserEvent", "UserEvent": "after"})
    await wait_until(lambda: "UserEvent" in names)
    assert names == ["TestEvent", "UserEvent"]
    assert client.connected and peer.logins == 1


async def test_utf8_split_between_writes_arrives_intact(peer: AmiPeer, client: AmiClient) -> None:
    names: list[str] = []
    client.on_event("Newchannel", lambda event: names.append(event.calleridname))
    frame = f"Event: Newchannel\r\nCallerIDName: {NAME}\r\n\r\n".encode()
    inside_e_acute = frame.index("é".encode()) + 1
    inside_u_umlaut = frame.index("ü".encode()) + 1
    await peer.emit_raw(frame, split_at=[inside_e_acute, inside_u_umlaut])
    await wait_until(lambda: names != [])
    assert names == [NAME]


# -- protocol, driven directly ----------------------------------------------------------------------


async def feed_protocol(*chunks: bytes, on_event: Any = None) -> list[Message]:
    events: list[Message] = []
    protocol = AmiProtocol(on_event or events.append)
    protocol.connection_made(asyncio.Transport())
    for chunk in [b"Asterisk Call Manager/9.0.0\r\n", *chunks]:
        protocol.data_received(chunk)
    return events


async def test_utf8_survives_every_split_position() -> None:
    frame = f"Event: Newchannel\r\nCallerIDName: {NAME}\r\n\r\n".encode()
    for cut in range(1, len(frame)):
        events = await feed_protocol(frame[:cut], frame[cut:])
        assert [e.calleridname for e in events] == [NAME], cut


async def test_invalid_utf8_is_replaced_not_dropped() -> None:
    events = await feed_protocol(b"Event: Newchannel\r\nCallerIDName: Ren\xff\r\n\r\n")
    assert [e.calleridname for e in events] == ["Ren\ufffd"]


async def test_a_failing_message_does_not_stop_the_next_one() -> None:
    seen: list[str] = []

    def on_event(event: Message) -> None:
        seen.append(event.userevent)
        if event.userevent == "bad":
            raise RuntimeError("boom")

    frames = b"Event: UserEvent\r\nUserEvent: bad\r\n\r\nEvent: UserEvent\r\nUserEvent: good\r\n\r\n"
    await feed_protocol(frames, on_event=on_event)
    assert seen == ["bad", "good"]
