"""What bench/ivr_load.py reads around a run: process CPU and memory from /proc, and Asterisk over AMI.

CPU is read from ``/proc/<pid>/stat`` (utime + stime, the process's own threads), memory from
``/proc/<pid>/status`` (VmRSS now, VmHWM the peak since the process started).
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path
from typing import Any

from cti.ami import AmiClient

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far (its threads included, its children not)."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()  # the command name may hold spaces
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # fields 14 and 15 of proc(5)


def memory_mib(pid: int) -> dict[str, float]:
    """``rss`` (now) and ``hwm`` (peak) in MiB."""
    found: dict[str, float] = {}
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                found["rss" if key == "VmRSS" else "hwm"] = int(value.split()[0]) / 1024
    return found


def open_files(pid: int) -> int:
    """File descriptors ``pid`` holds (sockets included)."""
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def open_files_limit(pid: int) -> int | None:
    """The soft ``Max open files`` of ``pid`` (/proc/<pid>/limits)."""
    with open(f"/proc/{pid}/limits") as handle:
        for line in handle:
            if line.startswith("Max open files"):
                soft = line.split()[3]
                return None if soft == "unlimited" else int(soft)
    return None


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (e.g. the transcription workers of a cti server)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def pid_from_file(path: Path) -> int | None:
    try:
        pid = int(path.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


class LogTail:
    """The lines a log file gains from now on (Asterisk's messages.log, the server's log)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = path.stat().st_size if path.exists() else 0

    def new_lines(self) -> list[str]:
        if not self.path.exists():
            return []
        with self.path.open("rb") as handle:
            handle.seek(self.offset)
            return handle.read().decode("utf-8", "replace").splitlines()


_VARIABLE_BITS = re.compile(r"^\[[^]]*\] |\[C-[0-9a-f]+\]|\b\d[\d.:-]*\b|'[^']*'|\"[^\"]*\"")


def problems(lines: list[str], levels: tuple[str, ...] = ("WARNING", "ERROR")) -> dict[str, Any]:
    """How many lines of each level, and the commonest messages with dates, ids and quoted values masked."""
    counts = Counter(level for line in lines for level in levels if level in line)
    kinds = Counter(_VARIABLE_BITS.sub("_", line)[:160] for line in lines if any(level in line for level in levels))
    return {"counts": dict(counts), "top": kinds.most_common(5)}


# --- Asterisk over AMI ---------------------------------------------------------------------------


async def quiet_ami(client: AmiClient) -> None:
    """This session needs answers, not the thousands of events a load run makes Asterisk send."""
    await client.send_action({"Action": "Events", "EventMask": "off"})


async def global_variable(client: AmiClient, name: str) -> str:
    reply = await client.send_action({"Action": "Getvar", "Variable": name})
    return str(reply.get("Value") or "")


async def set_global_variable(client: AmiClient, name: str, value: str) -> None:
    await client.send_action({"Action": "Setvar", "Variable": name, "Value": value})


async def active_calls(client: AmiClient) -> int:
    """Asterisk's count of active calls (``CoreStatus``: one per SIP channel here)."""
    reply = await client.send_action({"Action": "CoreStatus"})
    return int(reply.get("CoreCurrentCalls") or 0)


async def channel_count(client: AmiClient) -> int:
    """Channels Asterisk holds right now (``CoreShowChannels``; ``core show channels`` on the CLI)."""
    return len(await client.send_list_action({"Action": "CoreShowChannels"}, timeout=30))
