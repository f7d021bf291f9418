"""The soak's result: the JSON-ready report of a run and the table printed after it."""

from __future__ import annotations

import argparse
import datetime as dt
import os
from typing import Any

from bench.common import percentile
from bench.soak_run.calls import CYCLE, Calls
from bench.soak_run.desk import NUMBER
from bench.soak_run.sampling import Sampler, cpu_per_call, memory


def report(options: argparse.Namespace, host: dict[str, Any], load_before: float, wall: float, calls: Calls,
           outcome: dict[str, Any], status: dict[str, Any], sampler: Sampler) -> dict[str, Any]:
    samples = sampler.samples
    mem = memory(samples, options)
    last = samples[-1] if samples else {}
    left = {"agi_sessions": last.get("agi_sessions"), "our_channels": last.get("our_channels")}
    status_ms = [s["status_ms"] for s in samples]
    ok = outcome["failed"] == 0 and outcome["placed"] > 0 and mem["flat"] is not False and not any(left.values())
    return {
        "benchmark": "soak", "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": host | {"load_before": load_before, "load_after": os.getloadavg()[0],
                           "load1_max": max((s["load1"] for s in samples), default=None)},
        "setup": {"rate_per_s": options.rate, "duration_s": options.duration, "agents": options.agents,
                  "agent_hold_s": options.agent_hold, "cycle": list(CYCLE), "number": NUMBER,
                  "database": database_kind(options), "wall_s": round(wall, 1)},
        "calls": outcome, "setup_latency_ms": latency(calls), "memory": mem, "left_behind": left,
        "peaks": {"our_channels": max((s["our_channels"] for s in samples), default=None),
                  "asterisk_channels": max((s["asterisk_channels"] for s in samples), default=None),
                  "calls_live": max((s["calls_live"] for s in samples), default=None),
                  "agi_sessions": max((s["agi_sessions"] for s in samples), default=None)},
        "status_rtt_ms": {"p50": percentile(status_ms, 0.5), "p99": percentile(status_ms, 0.99),
                          "max": max(status_ms)} if status_ms else None,
        "server_cpu_s": round(last.get("cpu_s", 0.0) - samples[0]["cpu_s"], 1) if samples else None,
        "server_cpu_ms_per_call": cpu_per_call(samples, options.warm_up),
        "server_agi": status["agi"], "server_ami": status["ami"], "server_collector": status.get("collector"),
        "sampling_errors": sampler.errors[:5],
        "samples": samples, "ok": ok,
    }


def latency(calls: Calls) -> dict[str, float | int | None]:
    values = [ms for call in calls.by_uid.values() if (ms := call.setup_ms) is not None]
    if not values:
        return {"samples": 0}
    return {"samples": len(values), **{name: round(percentile(values, fraction), 1) for name, fraction in
                                       (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0))}}


def database_kind(options: argparse.Namespace) -> str:
    if options.postgres:
        return "postgresql (own database)"
    return str(options.database_url or "sqlite (temporary file)")


def table(result: dict[str, Any]) -> str:
    host, setup, calls, mem = result["machine"], result["setup"], result["calls"], result["memory"]
    lines = [
        f"Soak through the real Asterisk: {setup['rate_per_s']:g} call/s for {setup['duration_s']:g} s "
        f"({setup['wall_s']:g} s with the drain), {setup['agents']} agents ({result['date']})",
        f"machine: {host['cpu']}, {host['cores']} cores, Python {host['python']}, load {host['load_before']:.2f} "
        f"-> {host['load_after']:.2f} (max {host['load1_max'] or 0:.2f})",
        "",
        f"{'scenario':<10} {'placed':>6} {'ok':>6} {'failed':>6}",
    ]
    for name, counts in [*calls["by_scenario"].items(), ("all", calls)]:
        lines.append(f"{name:<10} {counts['placed']:>6} {counts['ok']:>6} {counts['failed']:>6}")
    lat, peaks = result["setup_latency_ms"], result["peaks"]
    lines += [
        "",
        f"setup (originate -> first AGI command) ms: p50 {lat.get('p50')} p90 {lat.get('p90')} p99 {lat.get('p99')} "
        f"max {lat.get('max')} ({lat['samples']} calls); server AGI setup ms {_brief(result['server_agi']['setup_ms'])}"
        f", command rtt ms {_brief(result['server_agi']['command_rtt_ms'])}",
        f"RSS MiB: start {mem['rss_start_mib']} / after warm-up ({mem['warm_up_s']:g} s) {mem['rss_warm_mib']} / "
        f"end {mem['rss_end_mib']} / max {mem['rss_max_mib']}; slope after {mem['slope_from_s']:g} s (the second "
        f"half) {mem['slope_mib_per_h']} MiB/h (threshold {mem['max_slope_mib_per_h']:g}: "
        + ("not judged, run too short" if not mem["judged"] else "flat" if mem["flat"] else "GROWING") + ")",
        f"RSS slope MiB/h after the warm-up {mem['slope_after_warm_up_mib_per_h']}; per {mem['window_s']:g} s window "
        f"{mem['window_slopes_mib_per_h']}",
        f"open fds: start {mem['fds_start']} / end {mem['fds_end']} / max {mem['fds_max']}; server CPU "
        f"{result['server_cpu_s']} s; GET /api/status ms {result['status_rtt_ms']}",
        "server CPU ms per call, first / last quarter after warm-up: {first_ms} / {last_ms} (x{ratio})".format(
            **result["server_cpu_ms_per_call"]),
        f"peaks: our channels {peaks['our_channels']}, all Asterisk channels {peaks['asterisk_channels']}, "
        f"calls live {peaks['calls_live']}, AGI sessions {peaks['agi_sessions']}; left behind {result['left_behind']}",
        f"AGI commands seen on AMI: {calls['agi_commands']}; server log {result['server_log']['counts']}",
    ]
    if collector := result.get("server_collector"):
        lines.append(f"Python's full collections: {collector['full_collections']}, pause ms last "
                     f"{collector['full_pause_ms_last']} / max {collector['full_pause_ms_max']}; objects frozen at "
                     f"start {collector['frozen_objects']}")
    if "desktops" in result:
        lines.append(f"agent desktops: events {result['desktops']['events']}, errors {result['desktops']['errors']}")
    lines += [f"  FAILED {item['call']} ({item['scenario']}): {'; '.join(item['problems'])}"
              for item in calls["failures"][:10]]
    if result.get("ami_link_lost_at_s"):
        lines.append(f"AMI link lost at {result['ami_link_lost_at_s']} s: Asterisk restarted during the run; rerun")
    lines.append("RESULT: " + ("ok" if result["ok"] else f"FAILED (files in {result['files']})"))
    return "\n".join(lines)


def _brief(summary: dict[str, Any]) -> str:
    return "/".join(str(summary.get(key)) for key in ("p50", "p99", "max"))
