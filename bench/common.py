"""What every benchmark prints about the machine, the one percentile definition they share, how one awaited step
is timed, how a run ends, and the database the benches that fill one with N rows run on."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Collection, Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from cti.db import Database

T = TypeVar("T")


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (no interpolation), the same in every benchmark."""
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, int(fraction * len(ordered)))])


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            return next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown"


def machine() -> dict[str, Any]:
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "load_before": os.getloadavg()[0],
    }


async def timed(work: Awaitable[T]) -> tuple[T, float]:
    """``work``'s result and the seconds it took (``time.perf_counter``)."""
    start = time.perf_counter()
    result = await work
    return result, time.perf_counter() - start


def finish(outcome: dict[str, Any], table: str, json_path: Path | None, leave_out: Collection[str] = ()) -> None:
    """Write the whole result to ``json_path`` (if given), print it (without the ``leave_out`` keys: long sample
    lists) and the table, and exit 0 when ``outcome["ok"]``, 1 otherwise."""
    if json_path:
        json_path.write_text(json.dumps(outcome, indent=2) + "\n")
    print(json.dumps({key: value for key, value in outcome.items() if key not in leave_out}, indent=2))
    print()
    print(table)
    raise SystemExit(0 if outcome["ok"] else 1)


def run_stoppable(work: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(work)``, with SIGTERM cancelling it as Ctrl-C does: a bench that starts a server and places
    calls is often stopped with ``kill`` (SIGINT is ignored in background jobs), and its cleanup (stopping the
    server process, putting Asterisk's settings back) must still run. Exits with status 143 when stopped."""

    async def stoppable() -> T:
        task = asyncio.ensure_future(work)
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        return await task

    try:
        return asyncio.run(stoppable())
    except asyncio.CancelledError:
        print("stopped (SIGTERM): cleaned up, no result", file=sys.stderr)
        raise SystemExit(143) from None


def measure_on_database(url: str | None, sizes: Sequence[int],
                        measure: Callable[[Database, int], Awaitable[dict[str, Any]]]) -> list[dict[str, Any]]:
    """``measure(db, size)`` for each size in turn, on the migrated database at ``url`` or, without one, on a new
    SQLite file migrated here and removed afterwards."""
    from cti.db import make_database
    from cti.db.migrate import upgrade
    from cti.settings import DatabaseSettings

    async def each_size(target: str) -> list[dict[str, Any]]:
        db = make_database(DatabaseSettings(url=target))
        try:
            return [await measure(db, size) for size in sizes]
        finally:
            await db.close()

    with tempfile.TemporaryDirectory() as folder:
        target = url or f"sqlite+aiosqlite:///{folder}/bench.sqlite3"
        if not url:
            upgrade(DatabaseSettings(url=target))
        return asyncio.run(each_size(target))


def run_sized_bench(doc: str, *, rows: str, repeats: int, url_help: str,
                    measure: Callable[[Database, int, int], Awaitable[dict[str, Any]]],
                    table: Callable[[list[dict[str, Any]]], str], check: str) -> None:
    """The command line of a bench that fills a database with N rows (``--rows``, ``--repeats``, ``--url``):
    ``measure(db, size, repeats)`` for each size, then ``finish``; the run is ok when every result's ``check``
    key is true."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--rows", default=rows, help="sizes, comma-separated")
    parser.add_argument("--repeats", type=int, default=repeats)
    parser.add_argument("--url", help=url_help)
    args = parser.parse_args()
    sizes = [int(size) for size in args.rows.split(",")]
    results = measure_on_database(args.url, sizes, lambda db, size: measure(db, size, args.repeats))
    finish({"machine": machine(), "database": (args.url or "sqlite+aiosqlite").split(":", 1)[0], "results": results,
            "ok": all(result[check] for result in results)}, table(results), None)
