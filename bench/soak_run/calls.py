"""The soak's callers: the cycle of scenarios, one AMI Originate per call, and what AMI says about each call."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from panoramisk.message import Message

from bench.soak_run.desk import NUMBER
from cti.ami import AmiClient
from cti.ami.originate import originate_fields
from cti.ami.protocol import new_action_id
from cti.settings import Settings

MENU_DELAY = "w" * 8  # the key is pressed 4 s after the answer, while main-menu (7.4 s) plays
BEEP_DELAY = "w" * 14  # 7 s after the key: vm-intro (4.6 s) and the beep are over
SPEECH = "prompts/en/queue-hold"  # 3.5 s the voicemail caller "says" (a prompt file, under the media folder)
CYCLE = ("queue", "voicemail", "queue", "abandon", "queue", "voicemail", "queue", "queue", "abandon", "voicemail")
GONE = ("-1", "511")
"""AGI result codes meaning "the channel hung up (or was redirected) during or before this command": the
caller hanging up (abandon, voicemail), the session's ``CHANNEL STATUS`` probe after that, or the first
queue session's commands after the ACD redirected the channel to its agent. Counted, not failures: the
call's ending is judged from its row. 510 (unknown command), 520 (usage) and anything else are failures."""


@dataclass
class Call:
    number: int
    scenario: str
    uniqueid: str  # the ;2 half, which runs the inbound context: the AGI sessions and the call's row
    caller: str
    placed_at: float
    action_id: str = ""
    first_command_at: float | None = None
    ended_at: float | None = None
    commands: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def setup_ms(self) -> float | None:
        return None if self.first_command_at is None else (self.first_command_at - self.placed_at) * 1000


@dataclass
class Calls:
    """Every call placed, and what AMI says about them (events for other channels are ignored)."""

    prefix: str
    by_uid: dict[str, Call] = field(default_factory=dict)
    by_action: dict[str, Call] = field(default_factory=dict)
    gone: Counter[str] = field(default_factory=Counter)  # "-1"/"511" replies by command, for the report

    def on_event(self, event: Message) -> None:
        name = event.event
        if name == "OriginateResponse":
            call = self.by_action.get(str(event.get("ActionID")))
            if call is not None and event.get("Response") != "Success":
                call.problems.append(f"originate: {event.get('Response')} (reason {event.get('Reason')})")
                call.ended_at = call.ended_at or time.monotonic()
            return
        call = self.by_uid.get(str(event.get("Uniqueid")))
        if call is None:
            return
        if name == "AGIExecStart" and call.first_command_at is None:
            call.first_command_at = time.monotonic()
        elif name == "AGIExecEnd":
            call.commands += 1
            code = str(event.get("ResultCode"))
            if code in GONE:
                self.gone[f"{' '.join(str(event.get('Command')).split()[:2])} -> {code}"] += 1
            elif code != "200":
                call.problems.append(f"AGI {event.get('Command')!r} -> {code} {event.get('Result')}")
        elif name == "Newexten" and event.get("Context") == "cti-fallback" and event.get("Priority") == "1":
            call.problems.append("reached cti-fallback")
        elif name == "Hangup":
            call.ended_at = time.monotonic()

    def live(self) -> int:
        return sum(1 for call in self.by_uid.values() if call.ended_at is None)


def variables(call: Call, agi_url: str, agent_hold: int, speech: Path) -> dict[str, str]:
    digits = {"queue": MENU_DELAY + "1", "voicemail": MENU_DELAY + "9" + BEEP_DELAY, "abandon": MENU_DELAY + "2"}
    hold = {"queue": 60, "voicemail": 1, "abandon": 5 + call.number % 4}  # queue: the server hangs up first
    return {"__CTI_AGI_URL": agi_url, "__AGENT_HOLD": str(agent_hold), "SIM_DIGITS": digits[call.scenario],
            "SIM_PLAY": str(speech) if call.scenario == "voicemail" else "", "SIM_HOLD": str(hold[call.scenario])}


async def place(ami: AmiClient, calls: Calls, settings: Settings, number: int, agi_url: str, agent_hold: int) -> None:
    """One Originate: ``Local/<NUMBER>@<inbound>`` whose ;1 half plays the caller in ``[cti-sim]``."""
    uid = f"{calls.prefix}-{number:05d}-in"  # neither id may start with the other: Asterisk refuses that
    call = Call(number, CYCLE[number % len(CYCLE)], uid, f"+336{calls.prefix[-2:]}{number:06d}", time.monotonic())
    fields = originate_fields(f"Local/{NUMBER}@{settings.asterisk.inbound_context}", context="cti-sim", exten="s",
                              priority=1, application=None, data=None, caller_id=f"Soak <{call.caller}>",
                              variables=variables(call, agi_url, agent_hold, settings.paths.media_dir / SPEECH),
                              timeout_ms=15_000)
    call.action_id = new_action_id()
    fields |= {"ActionID": call.action_id, "ChannelId": f"{uid[:-3]}-out", "OtherChannelId": uid}
    calls.by_uid[uid] = calls.by_action[call.action_id] = call
    try:
        await ami.send_action(fields, timeout=10)
    except Exception as exc:
        call.problems.append(f"originate refused: {exc!r}")
        call.ended_at = time.monotonic()
