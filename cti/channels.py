"""Which channels are up in Asterisk right now, rebuilt from scratch after every AMI (re)connect.

Events missed while the link was down cannot be replayed, so the tracker does not try: each login
lists the live channels (CoreShowChannels) and replaces its picture, then follows Newchannel,
Newstate and Hangup events. Services that must not leave a stale call behind (the ACD, the wallboard)
read it instead of keeping their own copies.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from cti.ami import AmiClient, AmiError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LiveChannel:
    uniqueid: str
    channel: str
    caller_number: str
    state: str
    linkedid: str


def _channel_from(event: Mapping[str, str]) -> LiveChannel:
    return LiveChannel(
        uniqueid=event.get("Uniqueid", ""), channel=event.get("Channel", ""),
        caller_number=event.get("CallerIDNum", ""), state=event.get("ChannelStateDesc", ""),
        linkedid=event.get("Linkedid", ""),
    )


class ChannelTracker:
    def __init__(self, ami: AmiClient) -> None:
        self._ami = ami
        self.live: dict[str, LiveChannel] = {}
        self.resyncs = 0
        ami.on_event("Newchannel", self._on_update)
        ami.on_event("Newstate", self._on_update)
        ami.on_event("Hangup", self._on_hangup)
        ami.on_connected(self.resync)

    async def resync(self) -> None:
        """Replace the picture with Asterisk's own list; a failure keeps the old one and is logged."""
        try:
            items = await self._ami.send_list_action({"Action": "CoreShowChannels"})
        except AmiError as exc:
            log.warning("channel resync failed: %s", exc)
            return
        self.live = {c.uniqueid: c for c in map(_channel_from, items) if c.uniqueid}
        self.resyncs += 1
        log.info("channel resync: %d live channels", len(self.live))

    def _on_update(self, event: Mapping[str, str]) -> None:
        channel = _channel_from(event)
        if channel.uniqueid:
            self.live[channel.uniqueid] = channel

    def _on_hangup(self, event: Mapping[str, str]) -> None:
        self.live.pop(event.get("Uniqueid", ""), None)
