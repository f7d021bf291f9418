"""The soak benchmark's short version: one minute of calls at the benchmark's rate through the real Asterisk.

Same code as ``bench/soak.py`` (a ``cti serve`` process on its own database, callers sent to it with the
inherited channel variable ``__CTI_AGI_URL``, so Asterisk's global is left alone): every call of every
scenario must end as expected, and the server must hold no AGI session afterwards. Memory is measured by
the benchmark only (docs/BENCHMARKS.md, "Soak"); nothing here depends on timings.
"""

from __future__ import annotations

import json

import pytest

from bench.soak import EXPECTED, arguments, run_soak, table

pytestmark = pytest.mark.real


@pytest.mark.timeout(480)
async def test_a_minute_of_steady_calls_ends_every_call_as_expected() -> None:
    result = await run_soak(arguments(["--duration", "60", "--rate", "1.0", "--sample-every", "5"]))
    calls = result["calls"]
    summary = table(result) + "\n" + json.dumps(calls["failures"][:5], indent=1)

    assert not result["ami_link_lost_at_s"], "Asterisk restarted during the test (someone else's?): rerun\n" + summary
    assert calls["placed"] == 60 and calls["failed"] == 0, summary
    for scenario in EXPECTED:
        counts = calls["by_scenario"][scenario]
        assert counts["placed"] > 0 and counts["ok"] == counts["placed"], summary
    assert result["left_behind"] == {"agi_sessions": 0, "our_channels": 0}, summary
    assert result["server_agi"]["active_sessions"] == 0, summary
    assert not result["desktops"]["errors"], summary
