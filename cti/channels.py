"""Which channels are up in Asterisk right now, rebuilt from scratch after every AMI (re)connect.

Events missed while the link was down cannot be replayed, so the tracker does not try: each login
lists the live channels (CoreShowChannels) and replaces its picture, then follows Newchannel,
Newstate, Newexten, BridgeEnter/BridgeLeave and Hangup events. Services that must not leave a stale call
behind (the ACD, the wallboard) read it instead of keeping their own copies; a service about to free
something on the strength of "this channel is gone" asks for a fresh list (``snapshot``) rather than trust
the event-fed picture, and is told after every resync (``on_resync``) so it can look again.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace

from cti.ami import AmiClient, AmiError

log = logging.getLogger(__name__)

ResyncHook = Callable[[], Awaitable[None] | None]


@dataclass(frozen=True)
class LiveChannel:
    """``application``: what the channel runs now (``Dial`` while it rings or talks through Dial, ``AGI``,
    ``MusicOnHold``...); empty when unknown. ``bridge_id``: the bridge it is in, empty when none."""

    uniqueid: str
    channel: str
    caller_number: str
    state: str
    linkedid: str
    application: str = ""
    bridge_id: str = ""


def _channel_from(event: Mapping[str, str]) -> LiveChannel:
    return LiveChannel(
        uniqueid=event.get("Uniqueid", ""), channel=event.get("Channel", ""),
        caller_number=event.get("CallerIDNum", ""), state=event.get("ChannelStateDesc", ""),
        linkedid=event.get("Linkedid", ""), application=event.get("Application", ""),
        bridge_id=event.get("BridgeId", ""),
    )


class ChannelTracker:
    def __init__(self, ami: AmiClient) -> None:
        self._ami = ami
        self.live: dict[str, LiveChannel] = {}
        self.resyncs = 0
        self._hooks: list[ResyncHook] = []
        ami.on_event("Newchannel", self._on_update)
        ami.on_event("Newstate", self._on_update)
        ami.on_event("Newexten", self._on_exten)
        ami.on_event("BridgeEnter", self._on_bridge)
        ami.on_event("BridgeLeave", self._on_bridge)
        ami.on_event("Hangup", self._on_hangup)
        ami.on_connected(self.resync)

    def on_resync(self, hook: ResyncHook) -> None:
        """``hook`` runs after every successful resync (each AMI login, each ``snapshot``)."""
        self._hooks.append(hook)

    async def resync(self) -> None:
        """Replace the picture with Asterisk's own list; a failure keeps the old one and is logged."""
        if await self.snapshot() is None:
            return
        for hook in list(self._hooks):
            try:
                pending = hook()
                if pending is not None:
                    await pending
            except Exception:
                log.exception("channel resync hook failed")

    async def snapshot(self) -> dict[str, LiveChannel] | None:
        """Asterisk's list of live channels right now (and the new picture), or None when AMI cannot say."""
        if not self._ami.connected:
            return None
        try:
            items = await self._ami.send_list_action({"Action": "CoreShowChannels"})
        except AmiError as exc:
            log.warning("channel resync failed: %s", exc)
            return None
        self.live = {c.uniqueid: c for c in map(_channel_from, items) if c.uniqueid}
        self.resyncs += 1
        log.info("channel resync: %d live channels", len(self.live))
        return dict(self.live)

    def _on_update(self, event: Mapping[str, str]) -> None:
        channel = _channel_from(event)
        if channel.uniqueid:
            known = self.live.get(channel.uniqueid)
            if known is not None:  # these events carry neither the application nor the bridge
                channel = replace(channel, application=known.application, bridge_id=known.bridge_id)
            self.live[channel.uniqueid] = channel

    def _on_exten(self, event: Mapping[str, str]) -> None:
        known = self.live.get(event.get("Uniqueid", ""))
        if known is not None and event.get("Application"):
            self.live[known.uniqueid] = replace(known, application=event.get("Application", ""))

    def _on_bridge(self, event: Mapping[str, str]) -> None:
        known = self.live.get(event.get("Uniqueid", ""))
        if known is not None:
            entered = event.get("Event", "") == "BridgeEnter"
            self.live[known.uniqueid] = replace(known, bridge_id=event.get("BridgeUniqueid", "") if entered else "")

    def _on_hangup(self, event: Mapping[str, str]) -> None:
        self.live.pop(event.get("Uniqueid", ""), None)
