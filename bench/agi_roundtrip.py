"""AGI round-trip: our FastAGI server against a minimal asyncio responder, 1,000 concurrent calls.

Each call is an in-process asyncio client playing Asterisk: it connects, sends an Asterisk 22
environment block, then answers every command at once with a canned reply. Both servers send the same
seven commands per call (ANSWER, GET VARIABLE, SET VARIABLE, STREAM FILE, GET DATA, EXEC, HANGUP):

* ``ours``: ``FastAgiServer`` running a registered script that calls the typed ``AgiSession`` methods
  (routing, environment parsing, quoting, reply parsing, hang-up rules, per-command timeout);
* ``minimal``: the floor for asyncio: a ``start_server`` handler that writes the pre-encoded command
  lines and ``readline()``s each reply, with no parsing, session, routing or timeout.

Turnaround (the figure compared): measured by the peer, from just after it wrote the reply to command N
to the moment it has read command N+1, i.e. how long the server takes to turn a reply into its next
command, including its event loop's queueing behind the other calls. The first command (after the
environment) is reported separately as ``setup``. Peers and server share one event loop and one core
(in-process clients): the peer's own cost is in both figures. The target (ours <= 1.3x minimal) is
checked on the median over rounds of each round's p99; the pooled p99 is printed too. Method, caveats
and figures: docs/BENCHMARKS.md ("AGI round-trip").

Run: ``.venv/bin/python bench/agi_roundtrip.py [--sessions 1000] [--rounds 7] [--profile] [--default-malloc]``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import datetime as dt
import gc
import json
import os
import pstats
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

from bench.common import machine, percentile
from cti.agi import AgiSession, FastAgiServer, ScriptRegistry
from cti.allocator import M_MMAP_THRESHOLD, M_TRIM_THRESHOLD, glibc_mallopt
from cti.settings import AgiSettings
from tests.fakes.agi_peer import asterisk_env
from tests.fakes.agi_peer import env_block as fake_env_block

HOST = "127.0.0.1"
TARGET_RATIO = 1.3

# (command line the server sends, reply the fake Asterisk gives)
EXCHANGES: list[tuple[bytes, bytes]] = [
    (b"ANSWER\n", b"200 result=0\n"),
    (b"GET VARIABLE CALLERID(num)\n", b"200 result=1 (0612345678)\n"),
    (b"SET VARIABLE CTI_BENCH 1\n", b"200 result=1\n"),
    (b"STREAM FILE welcome #\n", b"200 result=0 endpos=424\n"),
    (b"GET DATA enter-account 3000 4\n", b"200 result=1234\n"),
    (b"EXEC Playback beep\n", b"200 result=0\n"),
    (b"HANGUP\n", b"200 result=1\n"),
]


async def bench_script(session: AgiSession) -> None:
    await session.answer()
    await session.get_variable("CALLERID(num)")
    await session.set_variable("CTI_BENCH", "1")
    await session.stream_file("welcome", "#")
    await session.get_data("enter-account", 3000, 4)
    await session.exec("Playback", "beep")
    await session.hangup()


def env_block(n: int) -> bytes:
    """The environment Asterisk 22 sends for a Local channel, as the unit tests' fake peer builds it."""
    env = asterisk_env("bench", uniqueid=f"1732350000.{n}", channel=f"Local/100@from-pstn-{n:08x};2")
    return fake_env_block(env)


# --- servers under test ------------------------------------------------------------------------


async def start_ours() -> tuple[int, Callable[[], Awaitable[None]]]:
    registry = ScriptRegistry()
    registry.register("bench")(bench_script)
    server = FastAgiServer(registry, AgiSettings(host=HOST, port=0))
    await server.start()
    return server.port, server.stop


async def start_minimal() -> tuple[int, Callable[[], Awaitable[None]]]:
    commands = [command for command, _ in EXCHANGES]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.readline() not in (b"\n", b""):
            pass
        for command in commands:
            writer.write(command)
            await reader.readline()
        writer.close()

    server = await asyncio.start_server(handle, HOST, 0, backlog=1024)

    async def stop() -> None:
        server.close()
        await server.wait_closed()

    return server.sockets[0].getsockname()[1], stop


SERVERS = {"ours": start_ours, "minimal": start_minimal}


# --- the fake Asterisk -------------------------------------------------------------------------


@dataclass
class Samples:
    turnaround: list[int] = field(default_factory=list)
    setup: list[int] = field(default_factory=list)
    errors: int = 0


async def fake_asterisk(port: int, n: int, samples: Samples) -> None:
    reader, writer = await asyncio.open_connection(HOST, port)
    clock = time.perf_counter_ns
    replies = [reply for _, reply in EXCHANGES]
    expected = [command for command, _ in EXCHANGES]
    writer.write(env_block(n))
    sent = clock()
    for index, reply in enumerate(replies):
        command = await reader.readline()
        received = clock()
        if command != expected[index]:
            samples.errors += 1
            break
        (samples.turnaround if index else samples.setup).append(received - sent)
        writer.write(reply)
        sent = clock()
    if await reader.read() != b"":  # the server closes after HANGUP
        samples.errors += 1
    writer.close()


async def run_round(name: str, sessions: int) -> tuple[Samples, float]:
    port, stop = await SERVERS[name]()
    samples = Samples()
    gc.collect()
    started = time.perf_counter()
    await asyncio.gather(*(fake_asterisk(port, n, samples) for n in range(sessions)))
    elapsed = time.perf_counter() - started
    await stop()
    if samples.errors or len(samples.turnaround) != sessions * (len(EXCHANGES) - 1):
        raise SystemExit(f"{name}: {samples.errors} calls went wrong")
    return samples, elapsed


def pin_malloc() -> bool:
    """Make glibc's allocator behave the same whatever ran before (docs/BENCHMARKS.md, "Allocator").

    asyncio reads each socket into a fresh 256 KiB buffer; depending on the heap's history glibc serves
    it from mmap or trims the heap after it, which adds syscalls to every read and made identical runs
    differ by 2x. Fixing both thresholds removes that history dependence for both servers alike.
    """
    return glibc_mallopt(M_MMAP_THRESHOLD, 4 << 20) and glibc_mallopt(M_TRIM_THRESHOLD, 64 << 20)


# --- report ------------------------------------------------------------------------------------


def percentile_us(values: list[int], fraction: float) -> float:
    return percentile(values, fraction) / 1000  # ns -> µs


def summarise(rounds: list[tuple[Samples, float]], sessions: int) -> dict[str, Any]:
    turnaround = [value for samples, _ in rounds for value in samples.turnaround]
    setup = [value for samples, _ in rounds for value in samples.setup]
    walls = [elapsed for _, elapsed in rounds]
    per_round_p99 = [percentile_us(samples.turnaround, 0.99) for samples, _ in rounds]
    return {
        "turnaround_us": {
            "p50": percentile_us(turnaround, 0.50),
            "p90": percentile_us(turnaround, 0.90),
            "p99": percentile_us(turnaround, 0.99),
            "max": max(turnaround) / 1000,
            "p99_round_median": statistics.median(per_round_p99),
            "samples": len(turnaround),
        },
        "turnaround_p99_per_round_us": per_round_p99,
        "setup_us": {"p50": percentile_us(setup, 0.50), "p99": percentile_us(setup, 0.99)},
        "wall_s_median": statistics.median(walls),
        "commands_per_s": sessions * len(EXCHANGES) / statistics.median(walls),
    }


def table(result: dict[str, Any]) -> str:
    host = result["machine"]
    lines = [
        f"AGI round-trip, {result['sessions']} concurrent calls x {len(EXCHANGES)} commands, "
        f"{result['rounds']} rounds ({result['date']})",
        f"machine: {host['cpu']}, {host['cores']} cores, Python {host['python']}, load {host['load_before']:.2f}",
        "",
        f"{'server':<9} {'p50 µs':>8} {'p90 µs':>8} {'p99 µs':>8} {'p99 rnd':>8} {'max µs':>8} "
        f"{'setup p50':>9} {'cmds/s':>7}",
    ]
    for name in SERVERS:
        row = result["servers"][name]
        t = row["turnaround_us"]
        lines.append(
            f"{name:<9} {t['p50']:>8.0f} {t['p90']:>8.0f} {t['p99']:>8.0f} {t['p99_round_median']:>8.0f} "
            f"{t['max']:>8.0f} {row['setup_us']['p50']:>9.0f} {row['commands_per_s']:>7.0f}"
        )
    ratio = result["ratio"]
    verdict = "met" if ratio["p99_round_median"] <= TARGET_RATIO else "MISSED"
    lines += [
        "",
        "p99 rnd: median over rounds of each round's p99 (one disturbed round cannot move it)",
        f"ours / minimal: p50 x{ratio['p50']:.2f}, p99 x{ratio['p99']:.2f}, "
        f"p99 rnd x{ratio['p99_round_median']:.2f} (target p99 rnd <= x{TARGET_RATIO}: {verdict})",
    ]
    return "\n".join(lines)


async def main(sessions: int, rounds: int, profile: bool, malloc_pinned: bool) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    for name in SERVERS:  # warm-up: imports, first connections, allocator
        await run_round(name, min(sessions, 100))
    collected: dict[str, list[tuple[Samples, float]]] = {name: [] for name in SERVERS}
    profiler = cProfile.Profile() if profile else None
    for index in range(rounds):
        order = list(SERVERS) if index % 2 == 0 else list(reversed(SERVERS))
        for name in order:
            if profiler and name == "ours":
                profiler.enable()
            collected[name].append(await run_round(name, sessions))
            if profiler:
                profiler.disable()
    if profiler:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    servers = {name: summarise(collected[name], sessions) for name in SERVERS}
    ours, floor = servers["ours"]["turnaround_us"], servers["minimal"]["turnaround_us"]
    return {
        "benchmark": "agi_roundtrip",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "sessions": sessions,
        "commands_per_session": len(EXCHANGES),
        "rounds": rounds,
        "definition": "turnaround = peer wrote reply N -> peer read command N+1 (µs); setup = env -> 1st cmd",
        "machine": machine() | {"load_before": load_before, "load_after": os.getloadavg()[0],
                                "event_loop": type(asyncio.get_event_loop_policy()).__name__},
        "malloc_pinned": malloc_pinned,
        "servers": servers,
        "ratio": {
            "p50": ours["p50"] / floor["p50"],
            "p99": ours["p99"] / floor["p99"],
            "p99_round_median": ours["p99_round_median"] / floor["p99_round_median"],
        },
        "target_p99_ratio": TARGET_RATIO,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--profile", action="store_true", help="cProfile our server's rounds")
    parser.add_argument("--default-malloc", action="store_true", help="leave glibc's thresholds alone")
    options = parser.parse_args()
    pinned = False if options.default_malloc else pin_malloc()
    outcome = asyncio.run(main(options.sessions, options.rounds, options.profile, pinned))
    print(json.dumps(outcome, indent=2))
    print()
    print(table(outcome))
