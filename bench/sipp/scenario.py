"""Driving SIPp for bench/ivr_load.py: the scenario for a run, its credentials file, the command, the results.

``ivr_uac.xml`` next to this file is a runnable scenario (it presses 1 after 8 s); ``render`` rewrites
its marked DTMF block and its hold time for other digits and delays. Checked against SIPp 3.6.1 (Debian
``sip-tester``): PCAP play needs CAP_NET_RAW (raw sockets), so sipp runs as root here.
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass
from pathlib import Path

SCENARIO = Path(__file__).with_name("ivr_uac.xml")
PCAP_DIR = Path("/usr/share/sip-tester")
DIGIT_GAP_MS = 300
"""Between two DTMF digits: each pcap lasts 140 ms, then the digit's end packets."""
PAUSE_MS = 500
"""What a ``w`` in the digits adds, as in the sandbox's simulated callers (docs/ASTERISK.md, SIM_DIGITS)."""

_DTMF_BLOCK = re.compile(r"( *)<!-- bench:dtmf begin.*?-->.*?<!-- bench:dtmf end -->", re.S)
_HOLD = re.compile(r'(<recv request="BYE" timeout=")\d+(")')
_PCAP_NAMES = {"*": "star", "#": "pound"} | {str(n): str(n) for n in range(10)}


class ScenarioError(ValueError):
    """Digits or timings that the scenario cannot play."""


def dtmf_pcap(digit: str, pcap_dir: Path = PCAP_DIR) -> Path:
    if digit not in _PCAP_NAMES:
        raise ScenarioError(f"no RFC 4733 pcap for DTMF {digit!r} (0-9, * and #; w pauses 0.5 s)")
    return pcap_dir / f"dtmf_2833_{_PCAP_NAMES[digit]}.pcap"


def render(digits: str, dtmf_delay_s: float, hold_s: float, pcap_dir: Path = PCAP_DIR) -> str:
    """The scenario pressing ``digits`` from ``dtmf_delay_s`` after the 200 OK, then waiting ``hold_s`` for a
    BYE. Digits are 300 ms apart; each ``w`` waits 0.5 s more (``1wwwwwwww2``: 2 comes 4.3 s after 1)."""
    if dtmf_delay_s < 0 or hold_s <= 0:
        raise ScenarioError("the DTMF delay must be >= 0 and the hold time > 0")
    text = SCENARIO.read_text(encoding="iso-8859-1")
    steps: list[str] = []
    wait_ms = round(dtmf_delay_s * 1000)
    for digit in digits:
        if digit in "wW":
            wait_ms += PAUSE_MS
            continue
        steps.append(f'<pause milliseconds="{wait_ms}"/>')
        steps.append(f'<nop><action><exec play_pcap_audio="{dtmf_pcap(digit, pcap_dir)}"/></action></nop>')
        wait_ms = DIGIT_GAP_MS
    if not steps and wait_ms:
        steps.append(f'<pause milliseconds="{wait_ms}"/>')
    text, found = _DTMF_BLOCK.subn(lambda match: "\n".join(match.group(1) + step for step in steps), text)
    text, held = _HOLD.subn(lambda match: f"{match.group(1)}{round(hold_s * 1000)}{match.group(2)}", text)
    if found != 1 or held != 1:
        raise ScenarioError(f"{SCENARIO} lost its markers (DTMF block {found}, hold {held})")
    return text.replace("/usr/share/sip-tester/", f"{pcap_dir}/")


def write_credentials(path: Path, user: str, password: str) -> None:
    """The injection file: one line, user and the [authentication] keyword (mode 0600: it holds the password)."""
    if any(char in value for value in (user, password) for char in "; ]\n"):
        raise ScenarioError("SIP user and password may not contain ';', ']', spaces or newlines")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(f"SEQUENTIAL\n{user};[authentication username={user} password={password}];\n")


@dataclass(frozen=True)
class SippRun:
    """Where one sipp run writes; ``command`` builds its argument list."""

    folder: Path
    name: str

    @property
    def scenario(self) -> Path:
        return self.folder / f"{self.name}.xml"

    @property
    def stats(self) -> Path:
        return self.folder / f"{self.name}-stats.csv"

    @property
    def errors(self) -> Path:
        return self.folder / f"{self.name}-errors.log"

    @property
    def screen(self) -> Path:
        return self.folder / f"{self.name}-screen.log"

    def command(self, *, target: str, number: str, credentials: Path, calls: int, limit: int, rate: float,
                local_port: int, timeout_s: int) -> list[str]:
        """Exactly ``calls`` calls, at most ``limit`` at once, started at ``rate`` per second; sipp gives up
        (and fails) after ``timeout_s``."""
        return [
            "sipp", target, "-sf", str(self.scenario), "-inf", str(credentials), "-s", number,
            "-i", "127.0.0.1", "-mi", "127.0.0.1", "-p", str(local_port), "-t", "u1",
            "-m", str(calls), "-l", str(limit), "-r", f"{rate:g}", "-rp", "1000",
            "-trace_stat", "-stf", str(self.stats), "-fd", "1",
            "-trace_err", "-error_file", str(self.errors),
            "-trace_screen", "-screen_file", str(self.screen),
            "-timeout", f"{timeout_s}s", "-timeout_error", "-nostdin",
            "-max_recv_loops", "5000", "-max_sched_loops", "5000", "-buff_size", str(4 << 20),
        ]


@dataclass(frozen=True)
class SippStats:
    """From sipp's statistics file (-trace_stat): the last row's cumulated counters, the peak of calls."""

    created: int
    successful: int
    failed: int
    peak_concurrent: int
    failure_reasons: dict[str, int]
    retransmissions: int
    out_of_call: int
    answer_ms_mean: float | None
    call_length_s_mean: float | None


def read_stats(path: Path) -> SippStats:
    with path.open(newline="") as handle:
        rows = [row for row in csv.DictReader(handle, delimiter=";") if row.get("TotalCallCreated")]
    if not rows:
        raise ScenarioError(f"{path} holds no statistics row")
    last = rows[-1]
    reasons = {key[len("Failed"):-len("(C)")]: int(value) for key, value in last.items()
               if key.startswith("Failed") and key.endswith("(C)") and key != "FailedCall(C)" and int(value)}
    return SippStats(
        created=int(last["TotalCallCreated"]),
        successful=int(last["SuccessfulCall(C)"]),
        failed=int(last["FailedCall(C)"]),
        peak_concurrent=max(int(row["CurrentCall"]) for row in rows),
        failure_reasons=reasons,
        retransmissions=int(last.get("Retransmissions(C)") or 0),
        out_of_call=int(last.get("OutOfCallMsgs(C)") or 0),
        answer_ms_mean=_duration_ms(last.get("ResponseTime1(C)")),
        call_length_s_mean=_seconds(last.get("CallLength(C)")),
    )


def _duration_ms(value: str | None) -> float | None:
    """sipp writes durations as ``HH:MM:SS:mmmuuu`` (microseconds after the last colon)."""
    if not value:
        return None
    hours, minutes, seconds, fraction = value.split(":")
    micros = int(fraction.ljust(6, "0")[:6])
    return (int(hours) * 3600 + int(minutes) * 60 + int(seconds)) * 1000 + micros / 1000


def _seconds(value: str | None) -> float | None:
    ms = _duration_ms(value)
    return None if ms is None else ms / 1000
