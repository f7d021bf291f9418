"""Click-to-dial: Asterisk rings the agent's own phone, and when they pick up it dials the number for them.

The number is dialled as the agent typed it (spaces, dots, dashes and brackets removed, a leading ``+`` kept)
through the agents' outgoing context, the one their phones dial through. An available agent is paused
("outbound call") first, so the ACD does not ring them for a queued call while they are on the phone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cti.ami import AmiClient
from cti.errors import CtiError

DIALLABLE = re.compile(r"^\+?[0-9]{2,20}$")
SEPARATORS = re.compile(r"[\s.\-()/]")
OUTBOUND_PAUSE_REASON = "outbound call"
RING_AGENT_MS = 30_000


class DialRefused(CtiError):
    code = "desktop.dial_refused"


def diallable(number: str) -> str:
    cleaned = SEPARATORS.sub("", number)
    if not DIALLABLE.fullmatch(cleaned):
        raise DialRefused(f"{number!r} is not a phone number (digits, an optional leading +)")
    return cleaned


@dataclass(frozen=True)
class ClickToDial:
    ami: AmiClient
    context: str

    async def dial(self, endpoint: str, number: str, agent_id: str) -> str:
        """Originate endpoint -> ``number``@context; returns the ActionID (the answer comes later over AMI)."""
        if not self.ami.connected:
            raise DialRefused("the phone system is not reachable right now; dial from your phone")
        return await self.ami.originate(
            endpoint, context=self.context, exten=number, priority=1, caller_id=f'"{number}" <{number}>',
            variables={"CTI_AGENT_ID": agent_id, "CTI_CLICK_TO_DIAL": "1"}, timeout_ms=RING_AGENT_MS)
