"""What every benchmark prints about the machine, the one percentile definition they share, and how a run ends."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import signal
import sys
from collections.abc import Collection, Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

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
