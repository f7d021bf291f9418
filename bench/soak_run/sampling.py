"""Samples of the server and Asterisk every few seconds during the soak, and the memory verdict drawn from them."""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from dataclasses import dataclass, field
from typing import Any

from bench.sipp import probes
from bench.soak_run.calls import Calls
from cti.ami import AmiClient
from tests.support.server_process import ServerProcess

WINDOW_S = 600.0  # the memory slope is also reported per window of this length


@dataclass
class Sampler:
    server: ServerProcess
    ami: AmiClient
    calls: Calls
    every_s: float
    started: float = field(default_factory=time.monotonic)
    samples: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    async def run(self) -> None:
        while True:
            try:
                self.samples.append(await self.sample())
            except Exception as exc:  # a slow reply must not stop the sampling; it is reported
                self.errors.append(repr(exc))
            await asyncio.sleep(self.every_s - (time.monotonic() - self.started) % self.every_s)

    async def sample(self) -> dict[str, Any]:
        pid = self.server.process.pid if self.server.process else 0
        asked = time.monotonic()
        status = await self.server.status()
        status_ms = (time.monotonic() - asked) * 1000
        channels = await self.ami.send_list_action({"Action": "CoreShowChannels"}, timeout=30)
        ours = sum(1 for channel in channels if str(channel.get("Linkedid", "")).startswith(self.calls.prefix))
        return {"t_s": round(asked - self.started, 1), "rss_mib": round(probes.memory_mib(pid)["rss"], 2),
                "fds": probes.open_files(pid), "cpu_s": round(probes.cpu_seconds(pid), 2),
                "status_ms": round(status_ms, 1), "agi_sessions": status["agi"]["active_sessions"],
                "ami_connected": status["ami"]["connected"], "server_live_channels": status["ami"]["live_channels"],
                "asterisk_channels": len(channels), "our_channels": ours, "calls_live": self.calls.live(),
                "calls_placed": len(self.calls.by_uid), "load1": os.getloadavg()[0]}


def slope_mib_per_hour(samples: list[dict[str, Any]], after_s: float, until_s: float = float("inf")) -> float | None:
    """Least-squares slope of VmRSS over the samples taken in ``[after_s, until_s]``."""
    points = [(s["t_s"], s["rss_mib"]) for s in samples if after_s <= s["t_s"] <= until_s]
    if len(points) < 3:
        return None
    mean_t = sum(t for t, _ in points) / len(points)
    mean_m = sum(m for _, m in points) / len(points)
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    return None if spread == 0 else round(sum((t - mean_t) * (m - mean_m) for t, m in points) / spread * 3600, 2)


def window_slopes(samples: list[dict[str, Any]], after_s: float, window_s: float = WINDOW_S) -> list[float | None]:
    """The slope in each ``window_s`` after ``after_s``: growth that slows down shows here, a leak does not."""
    end = samples[-1]["t_s"] if samples else after_s
    starts = [after_s + i * window_s for i in range(int((end - after_s) // window_s))]
    return [slope_mib_per_hour(samples, start, start + window_s) for start in starts]


def cpu_per_call(samples: list[dict[str, Any]], after_s: float) -> dict[str, float | None]:
    """Server CPU ms per call placed in the first and the last quarter of the samples after ``after_s``: work
    that grows with the day's calls (a read of every row, a list never trimmed) shows as a ratio above 1."""
    points = [s for s in samples if s["t_s"] >= after_s]
    quarter = len(points) // 4
    if quarter < 1:
        return {"first_ms": None, "last_ms": None, "ratio": None}

    def per_call(first: dict[str, Any], last: dict[str, Any]) -> float | None:
        calls = last["calls_placed"] - first["calls_placed"]
        return round((last["cpu_s"] - first["cpu_s"]) * 1000 / calls, 1) if calls > 0 else None

    first, last = per_call(points[0], points[quarter]), per_call(points[-1 - quarter], points[-1])
    return {"first_ms": first, "last_ms": last, "ratio": round(last / first, 2) if first and last else None}


def memory(samples: list[dict[str, Any]], options: argparse.Namespace) -> dict[str, Any]:
    """The verdict is drawn from the second half of the run after the warm-up: the allocators' free lists and
    pools keep settling for the first thousands of calls (fragmentation reaching its steady state) and then
    stop growing, while a leak keeps its slope to the end. The slope over the whole run after the warm-up and
    per ``WINDOW_S`` are reported beside it, so a growth that only slows down stays visible."""
    warm = next((s for s in samples if s["t_s"] >= options.warm_up), None)
    end = samples[-1]["t_s"] if samples else options.warm_up
    half = options.warm_up + (end - options.warm_up) / 2
    slope = slope_mib_per_hour(samples, half)
    judged = options.duration >= options.warm_up + options.min_judged and slope is not None
    return {"rss_start_mib": samples[0]["rss_mib"] if samples else None,
            "rss_warm_mib": warm["rss_mib"] if warm else None,
            "rss_end_mib": samples[-1]["rss_mib"] if samples else None,
            "rss_max_mib": max((s["rss_mib"] for s in samples), default=None),
            "slope_mib_per_h": slope, "slope_from_s": round(half, 1),
            "slope_after_warm_up_mib_per_h": slope_mib_per_hour(samples, options.warm_up),
            "window_s": WINDOW_S, "window_slopes_mib_per_h": window_slopes(samples, options.warm_up),
            "max_slope_mib_per_h": options.max_slope, "warm_up_s": options.warm_up,
            "judged": judged, "flat": (slope < options.max_slope) if judged and slope is not None else None,
            "fds_start": samples[0]["fds"] if samples else None, "fds_end": samples[-1]["fds"] if samples else None,
            "fds_max": max((s["fds"] for s in samples), default=None)}
