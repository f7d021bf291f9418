"""A bench stopped with SIGTERM still runs its cleanup (``bench.common.run_stoppable``): a soak killed by hand
must stop the server process it started instead of leaving it running."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import asyncio, sys
from pathlib import Path
from bench.common import run_stoppable

async def work() -> str:
    print("running", flush=True)
    try:
        await asyncio.sleep(60)
        return "finished"
    finally:
        await asyncio.sleep(0.05)  # cleanup may await (stopping a server process does)
        Path(sys.argv[1]).write_text("cleaned up")

print(run_stoppable(work()))
"""


def test_sigterm_runs_the_cleanup_and_exits_143(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    child = subprocess.Popen([sys.executable, "-c", PROBE, str(marker)], cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "running"
    time.sleep(0.1)  # the handler is installed before the work's first line runs; leave the loop a moment
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=30)
    assert child.returncode == 143, err
    assert marker.read_text() == "cleaned up"
    assert "stopped (SIGTERM)" in err


def test_work_that_ends_gives_its_result() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE.replace("asyncio.sleep(60)", "asyncio.sleep(0)"), "/dev/null"],
                          cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["running", "finished"]
