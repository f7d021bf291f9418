"""An Asterisk-side responder for voicemail flows: RECORD FILE writes the take's WAV, as Asterisk does."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from cti.agi.protocol import split_command
from tests.support.voicemail import write_wav
from tickets.voicemail.recordings import RecordingInfo


class FakeAsterisk:
    """Answers the node's commands as Asterisk would; RECORD FILE writes the take's WAV like Asterisk does.

    ``takes``: (seconds, ending) per RECORD FILE, ending in dtmf | hangup | silence. ``review``: the answer
    to each vm-review (a digit, "" for timeout, "hangup"). ``events`` interleaves what the caller heard
    with registrations, so the order "registered, then told it is saved" can be checked.
    """

    def __init__(self, takes: list[tuple[float, str]], review: Sequence[str] = (), hang_up_on: str = "") -> None:
        self.takes, self.review, self.hang_up_on = list(takes), list(review), hang_up_on
        self.events: list[str] = []
        self.recorded: list[Path] = []

    def __call__(self, command: str) -> str:
        words = split_command(command)
        verb = " ".join(words[:2])
        if verb in ("STREAM FILE", "GET DATA"):
            self.events.append(f"play:{Path(words[2]).name}")
            if Path(words[2]).name == self.hang_up_on:
                return "HANGUP\n200 result=-1"
            return self._review() if verb == "GET DATA" else "200 result=0 endpos=8000"
        if verb == "RECORD FILE":
            return self._record(Path(words[2] + ".wav"))
        if words[0] == "HANGUP":
            self.events.append("hangup")
            return "200 result=1\nHANGUP"
        return "200 result=0"

    def _record(self, wav: Path) -> str:
        seconds, ending = self.takes.pop(0)
        write_wav(wav, seconds)
        self.recorded.append(wav)
        self.events.append("record")
        endpos = int(seconds * 8000)
        if ending == "hangup":
            return f"200 result=-1 (hangup) endpos={endpos}\nHANGUP"
        if ending == "dtmf":
            return f"200 result=35 (dtmf) endpos={endpos}"
        return f"200 result=0 (timeout) endpos={endpos}"

    def _review(self) -> str:
        answer = self.review.pop(0)
        if answer == "hangup":
            return "HANGUP\n200 result=-1"
        return f"200 result={answer}" if answer else "200 result= (timeout)"

    async def register(self, info: RecordingInfo) -> int:
        self.events.append("register")
        self.registered = info
        return 42
