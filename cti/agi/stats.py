"""How fast the FastAGI server answers, as Asterisk sees it: two latency series over a bounded window.

* **command round trip**: from writing a command to having parsed its ``200`` reply, for the commands
  whose reply does not wait for the caller (``HANGUP``, ``GET VARIABLE``, ``SET VARIABLE``, ``CHANNEL
  STATUS``...). Under load it is mostly the time our event loop takes to get back to the call.
  Commands paced by the caller or the media are left out, since their time says nothing about the
  server: prompts, digit collection, recording, dialplan applications, and ``ANSWER``, which on a
  ringing channel waits up to 500 ms for the caller's first media frame (docs/ASTERISK.md, pitfall 2).
* **session setup**: from accepting the connection to sending the script's first command: reading and
  parsing the environment plus whatever the script does first (database lookups), queueing included.

Recording is two clock reads and a store into a ring per command. Each series keeps its last ``window``
samples in a ``SampleWindow``: an array of doubles allocated whole when the server starts, so the memory a
window takes is the same on the first call and the millionth (a growing deque of floats filled for hours
and read as a slow rise in the soak's memory, bench/soak.py). Percentiles are only computed when someone
asks (``snapshot``).
"""

from __future__ import annotations

from array import array
from typing import Final

WINDOW: Final = 10_000
"""Samples kept per series: the percentiles describe the most recent calls, not the server's whole life."""

CALLER_PACED: Final = (
    b"ANSWER",
    b"STREAM FILE ",
    b"CONTROL STREAM FILE ",
    b"GET DATA ",
    b"GET OPTION ",
    b"RECORD FILE ",
    b"WAIT FOR DIGIT ",
    b"SAY ",
    b"EXEC ",
    b"GOSUB ",
    b"SPEECH RECOGNIZE ",
    b"RECEIVE CHAR ",
    b"RECEIVE TEXT ",
)
"""Command lines (as sent, see ``cti.agi.protocol.format_command``) whose reply waits for the caller."""

Summary = dict[str, float | int | None]


class SampleWindow:
    """The last ``size`` samples of one series, in a ring of doubles allocated at once (constant memory)."""

    __slots__ = ("_next", "_ring", "filled", "size")

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("the window must hold at least one sample")
        self.size = size
        self._ring = array("d", bytes(8 * size))
        self._next = 0
        self.filled = 0

    def add(self, value: float) -> None:
        self._ring[self._next] = value
        self._next = (self._next + 1) % self.size
        if self.filled < self.size:
            self.filled += 1

    def values(self) -> list[float]:
        """The samples held, oldest first."""
        if self.filled < self.size:
            return self._ring[: self.filled].tolist()
        return self._ring[self._next:].tolist() + self._ring[: self._next].tolist()


def is_timed(line: bytes) -> bool:
    """Does this command line belong in the round-trip series?"""
    return not line.startswith(CALLER_PACED)


class AgiStats:
    """The recorder one ``FastAgiServer`` shares with its sessions (event-loop thread only)."""

    __slots__ = ("_commands", "_setups", "commands_total", "setups_total")

    def __init__(self, window: int = WINDOW) -> None:
        self._commands = SampleWindow(window)
        self._setups = SampleWindow(window)
        self.commands_total = 0
        self.setups_total = 0

    @property
    def window(self) -> int:
        """Samples kept per series."""
        return self._commands.size

    def record_command(self, seconds: float) -> None:
        self._commands.add(seconds)
        self.commands_total += 1

    def record_setup(self, seconds: float) -> None:
        self._setups.add(seconds)
        self.setups_total += 1

    def snapshot(self) -> dict[str, Summary]:
        """``command_rtt_ms`` and ``setup_ms``: ``count`` (since start), ``samples`` (in the window),
        then ``p50``, ``p99`` and ``max`` in milliseconds over the window (None before any sample)."""
        return {
            "command_rtt_ms": _summary(self._commands, self.commands_total),
            "setup_ms": _summary(self._setups, self.setups_total),
        }


def _summary(samples: SampleWindow, total: int) -> Summary:
    ordered = sorted(samples.values())
    return {
        "count": total,
        "samples": len(ordered),
        "p50": _percentile_ms(ordered, 0.50),
        "p99": _percentile_ms(ordered, 0.99),
        "max": round(ordered[-1] * 1000, 3) if ordered else None,
    }


def _percentile_ms(ordered: list[float], fraction: float) -> float | None:
    """Nearest rank, no interpolation (the definition ``bench/common.py`` uses)."""
    if not ordered:
        return None
    return round(ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000, 3)
