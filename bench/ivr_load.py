"""IVR load: N concurrent SIP calls through the real local Asterisk into our FastAGI server.

SIPp plays the trunk (PJSIP endpoint ``caller``, digest auth; bench/sipp/ivr_uac.xml): each call dials
``--number``, sends 7 s of PCMA audio, presses ``--digits`` (RFC 4733) ``--dtmf-delay`` seconds after the
answer and stays until the flow hangs up (at most ``--hold`` s). Asterisk (scripts/asterisk-sandbox.sh)
runs ``[from-pstn]``, so every call is an ``incoming`` AGI session on a private ``cti serve`` subprocess:
its own AGI and HTTP ports, its own SQLite database seeded by ``cti demo`` and bench/sipp/desk.yaml,
its own API token. For the run,
Asterisk's global ``CTI_AGI_URL`` points at that server; the value it had is put back at the end.

Two phases in the same server process: a baseline (``--baseline-calls``, one at a time) and the load
(``--calls`` calls started at ``--rate`` per second, all allowed at once). For each: sipp's counts (exit
code, successful, failed and why, peak of concurrent calls), the server's CPU seconds and % of one core
over the phase (``/proc/<pid>/stat``), its peak RSS, the AGI latencies from ``GET /api/status``
(command round trip and session setup, cti/agi/stats.py), Asterisk's CPU and peak of active calls, the
``calls`` rows the phase added and their outcomes, and that Asterisk's channels and the server's AGI
sessions are back to 0 afterwards. The AGI percentiles cover the server's last 10,000 samples, so the
load phase's figures include the baseline's few samples. Method and figures: docs/BENCHMARKS.md.

Run (as root: SIPp's PCAP play uses raw sockets):
``.venv/bin/python bench/ivr_load.py [--calls 500] [--rate 50] [--number 5551000] [--digits 1]``
Exit status 0 when every call of both phases succeeded on both sides, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

from bench.common import finish, machine, run_stoppable
from bench.sipp import probes
from bench.sipp.scenario import ScenarioError, SippRun, read_stats, render, write_credentials
from bench.sipp.server import ROOT, Server, free_port
from cti.ami import AmiClient
from cti.asterisk_config import sip_password
from cti.settings import Settings, load_settings

AGI_URL = "CTI_AGI_URL"
BAD_OUTCOMES = frozenset({"error", "in_progress"})
"""Call rows with these outcomes count as failures (a flow that crashed, or a row never closed)."""


# --- Asterisk's side -----------------------------------------------------------------------------


@dataclass
class Sandbox:
    """The running sandbox: AMI (events off), Asterisk's PID and log, and the global we redirect."""

    settings: Settings
    ami: AmiClient
    asterisk_pid: int | None
    asterisk_log: Path
    original_url: str = ""
    our_url: str = ""

    @property
    def default_url(self) -> str:
        return f"agi://{self.settings.agi.advertised_host}:{self.settings.agi.port}"

    async def point_at(self, url: str, wait_s: float) -> None:
        """Take the sandbox's CTI_AGI_URL once nobody else (a real-Asterisk test) has it."""
        deadline = time.monotonic() + wait_s
        while (current := await probes.global_variable(self.ami, AGI_URL)) not in ("", self.default_url):
            if time.monotonic() > deadline:
                raise SystemExit(f"{AGI_URL} is {current} (someone else's test?) since {wait_s:.0f} s: retry later")
            print(f"{AGI_URL} is {current}, not the default {self.default_url}: waiting", file=sys.stderr)
            await asyncio.sleep(5)
        self.original_url, self.our_url = current or self.default_url, url
        await probes.set_global_variable(self.ami, AGI_URL, url)

    async def wait_idle(self, wait_s: float) -> None:
        """A phase starts on an idle Asterisk: no other test's calls (nor the previous phase's) in the figures."""
        deadline = time.monotonic() + wait_s
        while calls := await probes.active_calls(self.ami):
            if time.monotonic() > deadline:
                raise SystemExit(f"Asterisk still has {calls} active calls after {wait_s:.0f} s: retry later")
            await asyncio.sleep(2)

    async def restore(self) -> None:
        if self.our_url and await probes.global_variable(self.ami, AGI_URL) == self.our_url:
            await probes.set_global_variable(self.ami, AGI_URL, self.original_url)

    async def wait_drained(self, server: Server, timeout: float = 60.0) -> tuple[int, int]:
        """Asterisk's channels and the server's AGI sessions once both are 0, or when ``timeout`` is up."""
        deadline = time.monotonic() + timeout
        while True:
            channels = await probes.channel_count(self.ami)
            sessions = int((await server.status())["agi"]["active_sessions"])
            if (channels == 0 and sessions == 0) or time.monotonic() > deadline:
                return channels, sessions
            await asyncio.sleep(0.5)


@dataclass
class Watch:
    """Sampled every second during a phase; ``peak_cpu_pct`` is the busiest one-second slice of each process."""

    peak_active_calls: int = 0
    peak_rss_mib: float = 0.0
    peak_fds: dict[str, int] = field(default_factory=lambda: {"server": 0, "asterisk": 0})
    peak_cpu_pct: dict[str, float] = field(default_factory=lambda: {"server": 0.0, "asterisk": 0.0})
    url_changed_to: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)

    async def run(self, sandbox: Sandbox, server_pid: int) -> None:
        pids = {name: pid for name, pid in (("server", server_pid), ("asterisk", sandbox.asterisk_pid)) if pid}
        last = {name: (time.monotonic(), probes.cpu_seconds(pid)) for name, pid in pids.items()}
        while True:
            await asyncio.sleep(1.0)
            try:
                await self._sample(sandbox, server_pid, pids, last)
            except Exception as exc:  # a slow AMI reply at the peak must not stop the sampling
                self.errors.append(repr(exc))

    async def _sample(self, sandbox: Sandbox, server_pid: int, pids: dict[str, int],
                      last: dict[str, tuple[float, float]]) -> None:
        self.peak_active_calls = max(self.peak_active_calls, await probes.active_calls(sandbox.ami))
        self.peak_rss_mib = max(self.peak_rss_mib, probes.memory_mib(server_pid)["rss"])
        for name, pid in pids.items():
            (then, cpu_then), now = last[name], (time.monotonic(), probes.cpu_seconds(pid))
            last[name] = now
            busy = round(100 * (now[1] - cpu_then) / (now[0] - then), 1)
            self.peak_cpu_pct[name] = max(self.peak_cpu_pct[name], busy)
            self.peak_fds[name] = max(self.peak_fds[name], probes.open_files(pid))
        if (url := await probes.global_variable(sandbox.ami, AGI_URL)) != sandbox.our_url:
            self.url_changed_to.add(url)


# --- one phase -----------------------------------------------------------------------------------


@dataclass
class Bench:
    options: argparse.Namespace
    work: Path
    server: Server
    sandbox: Sandbox
    credentials: Path

    async def phase(self, name: str, calls: int, rate: float, *, sequential: bool = False) -> dict[str, Any]:
        """``calls`` calls started at ``rate`` per second, all at once or (``sequential``) one after another."""
        await self.sandbox.wait_idle(self.options.wait_sandbox)
        run = SippRun(self.work, name)
        last_id = max((row[0] for row in await self.server.call_rows(0)), default=0)
        logs = probes.LogTail(self.sandbox.asterisk_log), probes.LogTail(self.server.log)
        watch, pids = Watch(), (self.server.pid, self.sandbox.asterisk_pid)
        cpu_before = [probes.cpu_seconds(pid) if pid else 0.0 for pid in pids]
        started = time.monotonic()
        watcher = asyncio.create_task(watch.run(self.sandbox, self.server.pid))
        exit_code, usage = await self._sipp(run, calls, 1 if sequential else calls, rate)
        wall = time.monotonic() - started
        cpu = [probes.cpu_seconds(pid) - before if pid else None for pid, before in zip(pids, cpu_before, strict=True)]
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
        channels, sessions = await self.sandbox.wait_drained(self.server)
        status, rows = await self.server.status(), await self.server.call_rows(last_id)
        memory = probes.memory_mib(self.server.pid)
        result = {
            "calls": calls, "rate_per_s": rate, "wall_s": round(wall, 2),
            "sipp": sipp_summary(run, exit_code, usage),
            "server": {"cpu_s": _round(cpu[0]), "cpu_pct_core": _pct(cpu[0], wall),
                       "cpu_pct_core_peak_1s": watch.peak_cpu_pct["server"],
                       "rss_mib_peak": round(max(watch.peak_rss_mib, memory["rss"]), 1),
                       "vm_hwm_mib": round(memory["hwm"], 1), "agi": status["agi"],
                       "active_sessions_after": sessions, "peak_open_files": watch.peak_fds["server"],
                       "open_files_limit": probes.open_files_limit(self.server.pid),
                       "log": probes.problems(logs[1].new_lines())},
            "asterisk": {"cpu_s": _round(cpu[1]), "cpu_pct_core": _pct(cpu[1], wall),
                         "cpu_pct_core_peak_1s": watch.peak_cpu_pct["asterisk"],
                         "peak_active_calls": watch.peak_active_calls, "channels_after": channels,
                         "peak_open_files": watch.peak_fds["asterisk"],
                         "open_files_limit": _maybe(probes.open_files_limit, self.sandbox.asterisk_pid),
                         "log": probes.problems(logs[0].new_lines())},
            "calls_table": {"rows": len(rows), "outcomes": dict(Counter(row[1] for row in rows)),
                            "top_paths": Counter(row[2] for row in rows).most_common(3)},
            "agi_url_changed_to": sorted(watch.url_changed_to),
            "sampling_errors": watch.errors[:5],
        }
        result["failures"] = failures(result)
        return result

    async def _sipp(self, run: SippRun, calls: int, limit: int, rate: float) -> tuple[int, Any]:
        """Run sipp to the end; its exit code and resource usage (``os.wait4``: its CPU time)."""
        options = self.options
        run.scenario.write_text(render(options.digits, options.dtmf_delay, options.hold), encoding="iso-8859-1")
        host, _, port = self.sandbox.settings.asterisk.sip_bind.rpartition(":")
        command = run.command(target=f"{'127.0.0.1' if host in ('', '0.0.0.0') else host}:{port}",
                              number=options.number, credentials=self.credentials, calls=calls, limit=limit,
                              rate=rate, local_port=free_port(socket.SOCK_DGRAM),
                              timeout_s=int(calls / rate + calls / limit * (options.dtmf_delay + options.hold + 10)
                                            + 60))
        with (self.work / f"{run.name}-sipp.out").open("wb") as out:
            sipp = await asyncio.to_thread(subprocess.Popen, command, stdout=out, stderr=subprocess.STDOUT,
                                           stdin=subprocess.DEVNULL, cwd=self.work)
        _, wait_status, usage = await asyncio.to_thread(os.wait4, sipp.pid, 0)
        sipp.returncode = os.waitstatus_to_exitcode(wait_status)
        return sipp.returncode, usage


def sipp_summary(run: SippRun, exit_code: int, usage: Any) -> dict[str, Any]:
    try:
        stats = read_stats(run.stats)
    except (OSError, ValueError) as exc:
        return {"exit_code": exit_code, "error": str(exc), "files": str(run.folder)}
    return {"exit_code": exit_code, "created": stats.created, "successful": stats.successful,
            "failed": stats.failed, "failure_reasons": stats.failure_reasons,
            "peak_concurrent": stats.peak_concurrent, "retransmissions": stats.retransmissions,
            "out_of_call_msgs": stats.out_of_call, "answer_ms_mean": stats.answer_ms_mean,
            "call_length_s_mean": stats.call_length_s_mean, "cpu_s": round(usage.ru_utime + usage.ru_stime, 2)}


def failures(result: dict[str, Any]) -> list[str]:
    """Every reason this phase is not "all calls through, nothing left behind"."""
    calls, sipp, found = result["calls"], result["sipp"], []
    if sipp["exit_code"] != 0 or sipp.get("successful") != calls or sipp.get("failed"):
        found.append(f"sipp: exit {sipp['exit_code']}, {sipp.get('successful')} of {calls} successful, "
                     f"{sipp.get('failed')} failed {sipp.get('failure_reasons', sipp.get('error'))}")
    table = result["calls_table"]
    bad = {outcome: n for outcome, n in table["outcomes"].items() if outcome in BAD_OUTCOMES}
    if table["rows"] != calls or bad:
        found.append(f"server: {table['rows']} call rows for {calls} calls, outcomes {table['outcomes']}")
    if result["asterisk"]["channels_after"] or result["server"]["active_sessions_after"]:
        found.append(f"left behind: {result['asterisk']['channels_after']} Asterisk channels, "
                     f"{result['server']['active_sessions_after']} AGI sessions")
    if result["agi_url_changed_to"]:
        found.append(f"{AGI_URL} changed during the run ({result['agi_url_changed_to']}): someone else's test; retry")
    if any("Failed to authenticate" in text for text, _ in result["asterisk"]["log"]["top"]):
        found.append("Asterisk refused the SIP password: the sandbox was rendered from other settings "
                     "(bash scripts/asterisk-sandbox.sh reload)")
    return found


def _maybe(probe: Any, pid: int | None) -> Any:
    return None if pid is None else probe(pid)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _pct(cpu: float | None, wall: float) -> float | None:
    return None if cpu is None or wall <= 0 else round(100 * cpu / wall, 1)


# --- the run -------------------------------------------------------------------------------------


async def connect_sandbox(settings: Settings, sandbox_dir: Path) -> Sandbox:
    ami = AmiClient(settings.ami)
    await ami.start()
    try:
        await ami.wait_connected(10)
    except Exception as exc:
        await ami.stop()
        raise SystemExit(f"no AMI at {settings.ami.host}:{settings.ami.port} ({exc!r}): "
                         "bash scripts/asterisk-sandbox.sh start") from None
    await probes.quiet_ami(ami)
    pid = probes.pid_from_file(sandbox_dir / "run" / "asterisk.pid")
    return Sandbox(settings, ami, pid, sandbox_dir / "sid" / "var" / "log" / "asterisk" / "messages.log")


async def main(options: argparse.Namespace) -> dict[str, Any]:
    settings = load_settings(options.config)
    work = Path(tempfile.mkdtemp(prefix="cti-ivr-load-"))
    credentials = work / "credentials.csv"
    password = sip_password(settings.asterisk.sip_secret.get_secret_value(), options.caller)
    write_credentials(credentials, options.caller, password)
    server = Server(work, options.config, options.database_url or f"sqlite+aiosqlite:///{work}/bench.sqlite3")
    load_before = os.getloadavg()[0]
    await asyncio.to_thread(server.seed, work)
    sandbox = await connect_sandbox(settings, options.sandbox)
    phases: dict[str, Any] = {}
    try:
        await server.start()
        await sandbox.point_at(f"agi://127.0.0.1:{server.agi_port}", options.wait_sandbox)
        bench = Bench(options, work, server, sandbox, credentials)
        phases["baseline"] = await bench.phase("baseline", options.baseline_calls, 1.0, sequential=True)
        phases["load"] = await bench.phase("load", options.calls, options.rate)
    finally:
        await sandbox.restore()
        await server.stop()
        await sandbox.ami.stop()
    ok = not any(phase["failures"] for phase in phases.values())
    if ok and not options.keep:
        shutil.rmtree(work, ignore_errors=True)
    return {
        "benchmark": "ivr_load",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine() | {"load_before": load_before, "load_after": os.getloadavg()[0]},
        "setup": {"number": options.number, "digits": options.digits, "dtmf_delay_s": options.dtmf_delay,
                  "hold_s": options.hold, "caller": options.caller, "sipp": _sipp_version(),
                  "asterisk_pid": sandbox.asterisk_pid, "server_source": _server_source()},
        "phases": phases,
        "ratio": ratios(phases),
        "ok": ok,
        "files": None if ok and not options.keep else str(work),
    }


def ratios(phases: dict[str, Any]) -> dict[str, float | None]:
    """load / baseline for the AGI latencies and the server's CPU per call. With one baseline call its
    percentiles are a single sample each: ``--baseline-calls 5`` gives a steadier denominator."""
    if set(phases) != {"baseline", "load"}:
        return {}
    base, load = phases["baseline"]["server"], phases["load"]["server"]

    def ratio(a: float | None, b: float | None) -> float | None:
        return None if a is None or not b else round(a / b, 2)

    per_call = [(phase["server"]["cpu_s"] or 0) / max(phase["calls"], 1) for phase in (phases["baseline"],
                                                                                           phases["load"])]
    found = {f"{series}_{figure}": ratio(load["agi"][key][figure], base["agi"][key][figure])
             for series, key in (("command_rtt", "command_rtt_ms"), ("setup", "setup_ms")) for figure in ("p50", "p99")}
    return found | {"server_cpu_s_per_call": ratio(per_call[1], per_call[0])}


def _sipp_version() -> str:
    done = subprocess.run(["sipp", "-v"], capture_output=True, text=True, check=False)
    return next((line.strip() for line in done.stdout.splitlines() if "SIPp" in line), "unknown")


def _server_source() -> str:
    """Which ``cti`` package the server runs (PYTHONPATH may point at a snapshot of the tree)."""
    done = subprocess.run([sys.executable, "-c", "import cti, os; print(os.path.dirname(cti.__file__))"],
                          capture_output=True, text=True, check=False, cwd=ROOT)
    return done.stdout.strip()


# --- report --------------------------------------------------------------------------------------


def table(result: dict[str, Any]) -> str:
    host, setup = result["machine"], result["setup"]
    lines = [
        f"IVR load through the real Asterisk: number {setup['number']}, DTMF {setup['digits']!r} "
        f"{setup['dtmf_delay_s']:g} s after answer ({result['date']})",
        f"machine: {host['cpu']}, {host['cores']} cores, Python {host['python']}, "
        f"load {host['load_before']:.2f} -> {host['load_after']:.2f}; {setup['sipp']}",
        "",
        f"{'phase':<9} {'calls':>5} {'ok':>5} {'fail':>4} {'peak':>5} {'wall s':>7} {'cti CPU s':>9} "
        f"{'cti %core':>9} {'RSS MiB':>7} {'rtt p50/p99/max ms':>20} {'setup p50/p99/max ms':>21} "
        f"{'ast %core':>9} {'answer ms':>9}",
    ]
    for name, phase in result["phases"].items():
        sipp, srv, agi = phase["sipp"], phase["server"], phase["server"]["agi"]
        lines.append(
            f"{name:<9} {phase['calls']:>5} {sipp.get('successful', '?'):>5} {sipp.get('failed', '?'):>4} "
            f"{phase['asterisk']['peak_active_calls']:>5} {phase['wall_s']:>7.1f} {srv['cpu_s']:>9.2f} "
            f"{_busy(srv):>9} {srv['vm_hwm_mib']:>7.1f} {_triple(agi['command_rtt_ms']):>20} "
            f"{_triple(agi['setup_ms']):>21} {_busy(phase['asterisk']):>9} {sipp.get('answer_ms_mean') or 0:>9.1f}")
    lines += ["", "peak: Asterisk's active calls (CoreStatus, each second); %core: average over the phase / "
              "busiest second; RSS: the server's VmHWM;", "rtt: AGI command round trip; setup: connection accepted "
              "-> first command; answer: sipp's first INVITE -> 200 (mean)", f"load / baseline: {result['ratio']}"]
    for name, phase in result["phases"].items():
        ast, srv = phase["asterisk"], phase["server"]
        lines.append(f"{name}: calls table {phase['calls_table']['outcomes']}, Asterisk channels after "
                     f"{ast['channels_after']}, AGI sessions after {srv['active_sessions_after']}; peak open "
                     f"files: cti {srv['peak_open_files']}/{srv['open_files_limit']}, Asterisk "
                     f"{ast['peak_open_files']}/{ast['open_files_limit']}; sipp CPU {phase['sipp'].get('cpu_s')} s, "
                     f"{phase['sipp'].get('retransmissions')} SIP retransmissions")
        lines += [f"  FAILURE: {text}" for text in phase["failures"]]
    lines.append("RESULT: " + ("0 failures" if result["ok"] else f"FAILED (files in {result['files']})"))
    return "\n".join(lines)


def _busy(process: dict[str, Any]) -> str:
    """Average over the phase / busiest second, in % of one core."""
    average, peak = process["cpu_pct_core"], process["cpu_pct_core_peak_1s"]
    return "-" if average is None else f"{average:.0f}/{peak:.0f}"


def _triple(summary: dict[str, Any]) -> str:
    values = [summary.get(key) for key in ("p50", "p99", "max")]
    return "/".join("-" if value is None else f"{value:.1f}" for value in values)


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=500, help="concurrent calls of the load phase")
    parser.add_argument("--rate", type=float, default=50.0, help="calls started per second (ramp-up)")
    parser.add_argument("--number", default="5554000", help="the service number dialled (bench/sipp/desk.yaml)")
    parser.add_argument("--digits", default="1", help="DTMF pressed (0-9 * #; w: 0.5 s pause; empty: none)")
    parser.add_argument("--dtmf-delay", type=float, default=8.0, help="seconds after the answer")
    parser.add_argument("--hold", type=float, default=30.0, help="seconds to wait for the flow's hang-up")
    parser.add_argument("--baseline-calls", type=int, default=1, help="calls of the baseline, one at a time")
    parser.add_argument("--caller", default="caller", help="PJSIP endpoint (trunk side) the calls come from")
    parser.add_argument("--config", type=Path, default=Path(os.environ.get("CTI_CONFIG") or ROOT / "var/cti.toml"))
    parser.add_argument("--database-url", help="default: a fresh SQLite file in the run's folder")
    parser.add_argument("--sandbox", type=Path, default=Path(os.environ.get("CTI_SANDBOX") or "/opt/cti-sandbox"))
    parser.add_argument("--wait-sandbox", type=float, default=300.0,
                        help=f"seconds to wait while another test holds {AGI_URL}")
    parser.add_argument("--keep", action="store_true", help="keep the run's folder (logs, sipp files) on success")
    parser.add_argument("--json", type=Path, help="also write the JSON result to this file")
    options = parser.parse_args()
    if options.calls < 1 or options.baseline_calls < 1 or options.rate <= 0:
        parser.error("--calls and --baseline-calls must be >= 1, --rate > 0")
    try:
        render(options.digits, options.dtmf_delay, options.hold)
    except ScenarioError as exc:
        parser.error(str(exc))
    return options


if __name__ == "__main__":
    options = arguments()
    outcome = run_stoppable(main(options))
    finish(outcome, table(outcome), options.json)
