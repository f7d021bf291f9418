"""Soak: calls at a steady rate for a long time through the real local Asterisk into a real ``cti serve``.

The server runs as its own process (tests/support/server_process.py) on a private database (SQLite in a
temporary folder; ``--postgres``: a fresh database on a PostgreSQL server; or ``--database-url``) and a
private media folder, seeded with a desk: a service number open at every hour, a flow (caller screening,
opening hours, a menu), a queue ``support`` answered by ``--agents`` simulated agents
(``Local/<id>@cti-agent-sim``: they answer at once and hang up after ``--agent-hold`` s; their desktops are
open on ``/ws/agent`` and set each call's outcome), and a queue ``backoffice`` whose only agent is logged in
but paused, so callers wait there.

Callers are AMI Originates of Local channels into the inbound context, one every ``1 / --rate`` s, in a
fixed cycle of three scenarios:

* ``queue``: 1 at the menu, queued, bridged to an agent, the agent hangs up, the server says goodbye;
* ``voicemail``: 9 at the menu, speaks after the beep (SIM_PLAY of a prompt file), hangs up;
* ``abandon``: 2 at the menu, waits in ``backoffice`` and hangs up after a few seconds.

Asterisk's global ``CTI_AGI_URL`` is never touched (other people's tests share the sandbox): each
Originate sets the inherited channel variable ``__CTI_AGI_URL`` to our server, so the dialplan's
``${CTI_AGI_URL}`` reaches it on the caller's channel and on every channel it creates. The Originate
also names both halves (``ChannelId``/``OtherChannelId``), so each call's row, AMI events and recording
are found by the uniqueid we chose.

A call fails unless it ended as its scenario expects, judged from the server's records (the ``calls``
row: outcome, path, queue and agent; the recording and its ticket for a voicemail) and from AMI (every
``AGIExecEnd`` with result code 200, the ``cti-fallback`` context never entered, the channel hung up).
Every ``--sample-every`` s: the server's VmRSS and open file descriptors, ``GET /api/status`` (AGI
sessions, AMI link; its round trip stands in for event-loop lag), Asterisk's channels (all, and ours).
Memory is "flat" when the least-squares slope of VmRSS over the samples after ``--warm-up`` is under
``--max-slope`` MiB per hour. Method and figures: docs/BENCHMARKS.md ("Soak").

Run: ``.venv/bin/python bench/soak.py [--rate 1.0] [--duration 1800] [--json FILE]``. Exit status 0 when
no call failed and memory was flat (or the run too short to judge it), 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

from bench.common import finish, run_stoppable
from bench.soak_run.judging import EXPECTED
from bench.soak_run.report import table
from bench.soak_run.run import run_soak

__all__ = ["EXPECTED", "arguments", "run_soak", "table"]  # what tests/real/test_soak_short.py uses

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_URL = "postgresql+asyncpg://cti:cti@127.0.0.1:55432/cti_test"  # scripts/services.sh


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=1.0, help="calls started per second")
    parser.add_argument("--duration", type=float, default=1800.0, help="seconds during which calls are started")
    parser.add_argument("--agents", type=int, default=10, help="simulated agents in the support queue")
    parser.add_argument("--agent-hold", type=int, default=4, help="seconds an agent stays on the call")
    parser.add_argument("--sample-every", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--warm-up", type=float, default=300.0, help="seconds left out of the memory slope")
    parser.add_argument("--max-slope", type=float, default=4.0, help="MiB per hour of VmRSS growth called flat")
    parser.add_argument("--min-judged", type=float, default=600.0,
                        help="seconds after the warm-up needed before memory is judged")
    parser.add_argument("--drain", type=float, default=120.0, help="seconds to wait for the last calls to end")
    parser.add_argument("--config", type=Path, default=Path(os.environ.get("CTI_CONFIG") or ROOT / "var/cti.toml"))
    parser.add_argument("--database-url", help="default: a fresh SQLite file in the run's folder")
    parser.add_argument("--postgres", nargs="?", const=os.environ.get("CTI_TEST_POSTGRES_URL") or POSTGRES_URL,
                        help="a fresh database of its own on this PostgreSQL server (default: the test server)")
    parser.add_argument("--keep", action="store_true", help="keep the run's folder (database, server log)")
    parser.add_argument("--keep-media", action="store_true", help="leave the run's recordings in the media folder")
    parser.add_argument("--json", type=Path, help="also write the JSON result to this file")
    options = parser.parse_args(argv)
    if options.rate <= 0 or options.duration <= 0 or options.agents < 1:
        parser.error("--rate and --duration must be > 0, --agents >= 1")
    return options


if __name__ == "__main__":
    options = arguments()
    outcome = run_stoppable(run_soak(options))
    finish(outcome, table(outcome), options.json, leave_out=("samples",))
