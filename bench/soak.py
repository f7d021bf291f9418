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
import asyncio
import datetime as dt
import json
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from panoramisk.message import Message
from sqlalchemy import make_url, select, text
from sqlalchemy.ext.asyncio import create_async_engine

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

from bench.common import machine, percentile
from bench.sipp import probes
from cti.ami import AmiClient
from cti.ami.originate import originate_fields
from cti.ami.protocol import new_action_id
from cti.db import make_database
from cti.db.models import CallRecord
from cti.settings import DatabaseSettings, Settings, load_settings
from tests.support.server_process import ServerProcess
from tickets.models import Recording, Ticket

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_URL = "postgresql+asyncpg://cti:cti@127.0.0.1:55432/cti_test"  # scripts/services.sh
NUMBER = "5557000"
MENU_DELAY = "w" * 8  # the key is pressed 4 s after the answer, while main-menu (7.4 s) plays
BEEP_DELAY = "w" * 14  # 7 s after the key: vm-intro (4.6 s) and the beep are over
SPEECH = "prompts/en/queue-hold"  # 3.5 s the voicemail caller "says" (a prompt file, under the media folder)
CYCLE = ("queue", "voicemail", "queue", "abandon", "queue", "voicemail", "queue", "queue", "abandon", "voicemail")
EXPECTED: dict[str, tuple[str, tuple[str, ...]]] = {  # outcome, parts of the IVR path
    "queue": ("answered", ("main:1", "queue:support", ":answered")),
    "voicemail": ("voicemail", ("main:9", "voicemail:request")),
    "abandon": ("abandoned", ("main:2", "queue:backoffice")),
}
ALWAYS = ["00:00-00:00"]
GONE = ("-1", "511")
"""AGI result codes meaning "the channel hung up (or was redirected) during or before this command": the
caller hanging up (abandon, voicemail), the session's ``CHANNEL STATUS`` probe after that, or the first
queue session's commands after the ACD redirected the channel to its agent. Counted, not failures: the
call's ending is judged from its row. 510 (unknown command), 520 (usage) and anything else are failures."""
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


# --- the desk ------------------------------------------------------------------------------------


def desk_document() -> dict[str, Any]:
    return {
        "number": NUMBER, "name": "Soak desk", "language": "en",
        "hours": {"timezone": "Europe/Paris", "weekly": dict.fromkeys(DAYS, ALWAYS), "holidays": {"country": "FR"}},
        "flow": {"start": "screen", "nodes": {
            "screen": {"type": "caller", "rules": [{"when": {"caller": ["blocked"]}, "next": "refuse"}],
                       "default": "hours"},
            "refuse": {"type": "hangup", "prompts": ["blocked-caller"]},
            "hours": {"type": "hours", "open": "main", "closed": "refuse", "holiday": "main"},
            "main": {"type": "menu", "prompt": "main-menu", "options": {"1": "support", "2": "backoffice",
                                                                        "9": "message"}, "on_failure": "goodbye"},
            "support": {"type": "enqueue", "queue": "support", "skills": {"software": 1}, "overflow": "goodbye"},
            "backoffice": {"type": "enqueue", "queue": "backoffice", "overflow": "goodbye"},
            "message": {"type": "voicemail", "reason": "request"},
            "goodbye": {"type": "hangup", "prompts": ["goodbye"]},
        }},
    }  # fmt: skip


def acd_document(agents: int) -> dict[str, Any]:
    desk = [{"id": f"agent{n:02d}", "name": f"Agent {n}", "team": "support", "skills": {"software": 1 + n % 5},
             "endpoint": f"Local/agent{n:02d}@cti-agent-sim"} for n in range(1, agents + 1)]
    night = {"id": "night1", "name": "Night shift", "endpoint": "Local/night1@cti-agent-sim",
             "skills": {"escalation": 3}}
    queues = [{"name": "support", "label": "Support", "skills": {"software": 1}, "wrap_up_s": 1, "ring_timeout_s": 10},
              {"name": "backoffice", "label": "Back office", "skills": {"escalation": 1}}]
    return {"agents": [*desk, night], "queues": queues}


async def seed(server: ServerProcess, work: Path, agents: int) -> None:
    """``cti demo`` (migrations, prompts), then the desk and the ACD through the CLI."""
    (work / "desk.json").write_text(json.dumps(desk_document()))
    (work / "acd.json").write_text(json.dumps(acd_document(agents)))
    await server.run_cli("demo")
    await server.run_cli("ivr", "import", str(work / "desk.json"))
    await server.run_cli("acd", "import", str(work / "acd.json"))


async def post(server: ServerProcess, path: str, body: dict[str, Any] | None = None) -> Any:
    headers = {"Authorization": f"Bearer {server.token}"}
    async with aiohttp.ClientSession() as http, http.post(server.base_url + path, json=body or {},
                                                           headers=headers) as response:
        if response.status >= 300:
            raise SystemExit(f"POST {path}: {response.status} {await response.text()}")
        return await response.json()


async def staff(server: ServerProcess, agents: int) -> None:
    """Log every agent in through the HTTP API; the back office's only agent stays paused."""
    for n in range(1, agents + 1):
        await post(server, f"/api/acd/agents/agent{n:02d}/login")
    await post(server, "/api/acd/agents/night1/login")
    await post(server, "/api/acd/agents/night1/pause", {"reason": "soak test"})


# --- the calls -----------------------------------------------------------------------------------


@dataclass
class Call:
    number: int
    scenario: str
    uniqueid: str  # the ;2 half, which runs the inbound context: the AGI sessions and the call's row
    caller: str
    placed_at: float
    action_id: str = ""
    first_command_at: float | None = None
    ended_at: float | None = None
    commands: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def setup_ms(self) -> float | None:
        return None if self.first_command_at is None else (self.first_command_at - self.placed_at) * 1000


@dataclass
class Calls:
    """Every call placed, and what AMI says about them (events for other channels are ignored)."""

    prefix: str
    by_uid: dict[str, Call] = field(default_factory=dict)
    by_action: dict[str, Call] = field(default_factory=dict)
    gone: Counter[str] = field(default_factory=Counter)  # "-1"/"511" replies by command, for the report

    def on_event(self, event: Message) -> None:
        name = event.event
        if name == "OriginateResponse":
            call = self.by_action.get(str(event.get("ActionID")))
            if call is not None and event.get("Response") != "Success":
                call.problems.append(f"originate: {event.get('Response')} (reason {event.get('Reason')})")
                call.ended_at = call.ended_at or time.monotonic()
            return
        call = self.by_uid.get(str(event.get("Uniqueid")))
        if call is None:
            return
        if name == "AGIExecStart" and call.first_command_at is None:
            call.first_command_at = time.monotonic()
        elif name == "AGIExecEnd":
            call.commands += 1
            code = str(event.get("ResultCode"))
            if code in GONE:
                self.gone[f"{' '.join(str(event.get('Command')).split()[:2])} -> {code}"] += 1
            elif code != "200":
                call.problems.append(f"AGI {event.get('Command')!r} -> {code} {event.get('Result')}")
        elif name == "Newexten" and event.get("Context") == "cti-fallback" and event.get("Priority") == "1":
            call.problems.append("reached cti-fallback")
        elif name == "Hangup":
            call.ended_at = time.monotonic()

    def live(self) -> int:
        return sum(1 for call in self.by_uid.values() if call.ended_at is None)


def variables(call: Call, agi_url: str, agent_hold: int, speech: Path) -> dict[str, str]:
    digits = {"queue": MENU_DELAY + "1", "voicemail": MENU_DELAY + "9" + BEEP_DELAY, "abandon": MENU_DELAY + "2"}
    hold = {"queue": 60, "voicemail": 1, "abandon": 5 + call.number % 4}  # queue: the server hangs up first
    return {"__CTI_AGI_URL": agi_url, "__AGENT_HOLD": str(agent_hold), "SIM_DIGITS": digits[call.scenario],
            "SIM_PLAY": str(speech) if call.scenario == "voicemail" else "", "SIM_HOLD": str(hold[call.scenario])}


async def place(ami: AmiClient, calls: Calls, settings: Settings, number: int, agi_url: str, agent_hold: int) -> None:
    """One Originate: ``Local/<NUMBER>@<inbound>`` whose ;1 half plays the caller in ``[cti-sim]``."""
    uid = f"{calls.prefix}-{number:05d}-in"  # neither id may start with the other: Asterisk refuses that
    call = Call(number, CYCLE[number % len(CYCLE)], uid, f"+336{calls.prefix[-2:]}{number:06d}", time.monotonic())
    fields = originate_fields(f"Local/{NUMBER}@{settings.asterisk.inbound_context}", context="cti-sim", exten="s",
                              priority=1, application=None, data=None, caller_id=f"Soak <{call.caller}>",
                              variables=variables(call, agi_url, agent_hold, settings.paths.media_dir / SPEECH),
                              timeout_ms=15_000)
    call.action_id = new_action_id()
    fields |= {"ActionID": call.action_id, "ChannelId": f"{uid[:-3]}-out", "OtherChannelId": uid}
    calls.by_uid[uid] = calls.by_action[call.action_id] = call
    try:
        await ami.send_action(fields, timeout=10)
    except Exception as exc:
        call.problems.append(f"originate refused: {exc!r}")
        call.ended_at = time.monotonic()


@dataclass
class Desktops:
    """Every support agent's desktop open on ``/ws/agent`` (the admin token names the agent): after each call the
    agent sets its outcome, as agents do. Without that the ended cards stay in the shared state (4 h)."""

    server: ServerProcess
    agents: list[str]
    events: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)

    async def run(self) -> None:
        await asyncio.gather(*(self._desk(agent) for agent in self.agents))

    async def _desk(self, agent: str) -> None:
        headers = {"Authorization": f"Bearer {self.server.token}"}
        async with aiohttp.ClientSession(headers=headers) as http, http.ws_connect(
                f"{self.server.base_url}/ws/agent?agent={agent}") as socket:
            async for message in socket:
                if message.type is aiohttp.WSMsgType.TEXT:
                    await self._handle(socket, json.loads(message.data))
        self.errors.append(f"{agent}: desktop socket closed by the server")

    async def _handle(self, socket: aiohttp.ClientWebSocketResponse, event: dict[str, Any]) -> None:
        self.events[event["type"]] += 1
        data = event["data"]
        if event["type"] == "call_ended":
            await socket.send_json({"id": data["call_id"], "cmd": "set_outcome",
                                    "args": {"call_id": data["call_id"], "outcome": "resolved"}})
        elif event["type"] == "reply" and not data["ok"]:
            self.errors.append(f"{event['agent_id']}: {data['reply_to']} {data.get('error')} {data.get('message')}")


# --- sampling ------------------------------------------------------------------------------------


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


def slope_mib_per_hour(samples: list[dict[str, Any]], after_s: float) -> float | None:
    """Least-squares slope of VmRSS over the samples taken after ``after_s``."""
    points = [(s["t_s"], s["rss_mib"]) for s in samples if s["t_s"] >= after_s]
    if len(points) < 3:
        return None
    mean_t = sum(t for t, _ in points) / len(points)
    mean_m = sum(m for _, m in points) / len(points)
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    return None if spread == 0 else round(sum((t - mean_t) * (m - mean_m) for t, m in points) / spread * 3600, 2)


# --- judging -------------------------------------------------------------------------------------


async def records(database_url: str, uids: list[str]) -> tuple[dict[str, CallRecord], dict[int, Recording],
                                                                dict[int, Ticket]]:
    """The server's rows for our calls: calls by uniqueid, recordings by call id, tickets by id."""
    db = make_database(DatabaseSettings(url=database_url))
    try:
        async with db.session() as session:
            rows = {row.uniqueid: row for row in await session.scalars(
                select(CallRecord).where(CallRecord.uniqueid.in_(uids)))}
            # only ours: the server's orphan recovery also registers other runs' files from the shared folder
            found = {r.call_id: r for r in await session.scalars(select(Recording).where(Recording.uniqueid.in_(uids)))
                     if r.call_id is not None}
            tickets = {t.id: t for t in await session.scalars(select(Ticket).where(Ticket.source == "voicemail"))}
        return rows, found, tickets
    finally:
        await db.close()


def judge(call: Call, row: CallRecord | None, recording: Recording | None, ticket: Ticket | None) -> list[str]:
    """Why ``call`` did not end as its scenario expects (empty: it did)."""
    found = list(call.problems)
    if call.first_command_at is None:
        found.append("no AGI command: the call never reached our server")
    if call.ended_at is None:
        found.append("still up after the drain")
    if row is None:
        return [*found, "no call row"]
    outcome, parts = EXPECTED[call.scenario]
    if row.outcome != outcome or row.ended_at is None:
        found.append(f"row: outcome {row.outcome}, ended {row.ended_at is not None} (expected {outcome})")
    missing = [part for part in parts if part not in row.path]
    if missing:
        found.append(f"path {row.path!r} lacks {missing}")
    if call.scenario == "queue" and (row.agent_id is None or row.answered_at is None or row.queue != "support"
                                     or row.disposition != "resolved"):
        found.append(f"queued record: queue {row.queue}, agent {row.agent_id}, answered {row.answered_at}, "
                     f"outcome set by the agent {row.disposition}")
    if call.scenario == "voicemail":
        if recording is None or recording.duration_s < 1.0:
            found.append(f"recording: {None if recording is None else recording.duration_s} s")
        elif ticket is None or ticket.source_key != f"recording:{recording.id}" or ticket.call_id != row.id:
            found.append(f"no ticket for recording {recording.id} (state {recording.state})")
    return found


async def wait_until(check: Any, timeout: float, every: float = 1.0) -> bool:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(every)
    return True


# --- the run -------------------------------------------------------------------------------------


async def drive(options: argparse.Namespace, server: ServerProcess, ami: AmiClient, calls: Calls,
                settings: Settings) -> float:
    """Place the calls at a steady rate for ``duration`` s, then wait for them to end; the wall time."""
    started, tasks = time.monotonic(), set()
    total = int(options.duration * options.rate)
    for number in range(total):
        await asyncio.sleep(max(0.0, started + number / options.rate - time.monotonic()))
        task = asyncio.create_task(place(ami, calls, settings, number, server.agi_url, options.agent_hold))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    await asyncio.gather(*tasks)

    async def ended() -> bool:
        return calls.live() == 0

    await wait_until(ended, options.drain)
    return time.monotonic() - started


async def settle(server: ServerProcess, calls: Calls, database_url: str, timeout: float) -> None:
    """After the last hang-up: the server closes its sessions and files the voicemail tickets."""

    async def idle() -> bool:
        return int((await server.status())["agi"]["active_sessions"]) == 0

    async def filed() -> bool:
        rows, found, tickets = await records(database_url, list(calls.by_uid))
        wanted = [found.get(row.id) for uid, row in rows.items() if calls.by_uid[uid].scenario == "voicemail"]
        disposed = all(row.disposition for uid, row in rows.items() if calls.by_uid[uid].scenario == "queue")
        return disposed and all(r is not None and r.ticket_id in tickets for r in wanted)

    await wait_until(idle, timeout)
    await wait_until(filed, timeout, every=2.0)


def verdicts(calls: Calls, rows: dict[str, CallRecord], found: dict[int, Recording],
             tickets: dict[int, Ticket]) -> dict[str, Any]:
    by_scenario: dict[str, Counter[str]] = {name: Counter() for name in EXPECTED}
    failures = []
    for uid, call in calls.by_uid.items():
        row = rows.get(uid)
        recording = found.get(row.id) if row is not None else None
        ticket = tickets.get(recording.ticket_id) if recording is not None and recording.ticket_id else None
        problems = judge(call, row, recording, ticket)
        by_scenario[call.scenario].update(placed=1, ok=not problems, failed=bool(problems))
        if problems:
            failures.append({"call": uid, "scenario": call.scenario, "problems": problems})
    counts = {name: {key: counter[key] for key in ("placed", "ok", "failed")} for name, counter in by_scenario.items()}
    total = {key: sum(c[key] for c in counts.values()) for key in ("placed", "ok", "failed")}
    return {**total, "by_scenario": counts, "failures": failures[:30],
            "agi_commands": sum(call.commands for call in calls.by_uid.values()),
            "agi_channel_gone": dict(calls.gone.most_common())}


def latency(calls: Calls) -> dict[str, float | int | None]:
    values = [ms for call in calls.by_uid.values() if (ms := call.setup_ms) is not None]
    if not values:
        return {"samples": 0}
    return {"samples": len(values), **{name: round(percentile(values, fraction), 1) for name, fraction in
                                       (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0))}}


def memory(samples: list[dict[str, Any]], options: argparse.Namespace) -> dict[str, Any]:
    warm = next((s for s in samples if s["t_s"] >= options.warm_up), None)
    slope = slope_mib_per_hour(samples, options.warm_up)
    judged = options.duration >= options.warm_up + options.min_judged and slope is not None
    return {"rss_start_mib": samples[0]["rss_mib"] if samples else None,
            "rss_warm_mib": warm["rss_mib"] if warm else None,
            "rss_end_mib": samples[-1]["rss_mib"] if samples else None,
            "rss_max_mib": max((s["rss_mib"] for s in samples), default=None),
            "slope_mib_per_h": slope, "max_slope_mib_per_h": options.max_slope, "warm_up_s": options.warm_up,
            "judged": judged, "flat": (slope < options.max_slope) if judged and slope is not None else None,
            "fds_start": samples[0]["fds"] if samples else None, "fds_end": samples[-1]["fds"] if samples else None,
            "fds_max": max((s["fds"] for s in samples), default=None)}


async def run_soak(options: argparse.Namespace) -> dict[str, Any]:
    """The whole run; the result as a JSON-ready dict (``ok``: no failed call and memory not growing)."""
    os.environ.setdefault("CTI_CONFIG", str(options.config))
    settings = load_settings(options.config)
    work = Path(tempfile.mkdtemp(prefix="cti-soak-"))
    (work / "models").mkdir()  # no speech model: voicemail tickets are filed "not transcribed", at once
    calls = Calls(prefix=f"soak{int(time.time()) % 100_000:05d}")
    database_url = options.database_url or f"sqlite+aiosqlite:///{work}/soak.sqlite3"
    if options.postgres:
        database_url = await postgres_database(options.postgres, calls.prefix, create=True)
    media = private_media(settings.paths.media_dir, calls.prefix)
    server = ServerProcess(database_url, work / "server.log",
                           {"CTI_TRANSCRIPTION__MODELS_DIR": str(work / "models"), "CTI_AGI__HOST": "127.0.0.1",
                            "CTI_PATHS__MEDIA_DIR": str(media)})
    load_before, host = os.getloadavg()[0], machine()
    await seed(server, work, options.agents)
    ami = AmiClient(settings.ami)
    await ami.start()
    await ami.wait_connected(10)
    ami.on_event("*", calls.on_event)
    link_lost: list[float] = []  # an Asterisk restarted by someone else mid-run: its calls are lost, not ours to judge

    async def lost() -> None:
        link_lost.append(round(time.monotonic() - sampler.started, 1))

    ami.on_disconnected(lost)
    sampler = Sampler(server, ami, calls, options.sample_every)
    result: dict[str, Any] = {}
    try:
        await server.start()
        await staff(server, options.agents)
        global_url = await probes.global_variable(ami, "CTI_AGI_URL")  # left alone: calls carry their own
        desktops = Desktops(server, [f"agent{n:02d}" for n in range(1, options.agents + 1)])
        background = [asyncio.create_task(sampler.run()), asyncio.create_task(desktops.run())]
        wall = await drive(options, server, ami, calls, settings)
        await settle(server, calls, database_url, options.drain)
        sampler.samples.append(await sampler.sample())
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        status = await server.status()
        rows, found, tickets = await records(database_url, list(calls.by_uid))
        result = report(options, host, load_before, wall, calls, verdicts(calls, rows, found, tickets), status,
                        sampler)
        result["setup"] |= {"our_agi_url": server.agi_url, "global_agi_url": global_url}
        result["desktops"] = {"events": dict(desktops.events), "errors": desktops.errors[:10]}
        if desktops.errors:
            result["ok"] = False
    finally:
        await server.stop()
        await ami.stop()
    result["ami_link_lost_at_s"] = link_lost
    if link_lost:
        result["ok"] = False
    result["server_log"] = probes.problems((work / "server.log").read_text(errors="replace").splitlines())
    if options.postgres and not options.keep:
        await postgres_database(options.postgres, calls.prefix, create=False)
    result["recordings_kept_in"] = str(media) if options.keep_media else None
    if not options.keep_media:
        shutil.rmtree(media, ignore_errors=True)
    result["files"] = str(work)
    if result["ok"] and not options.keep:
        shutil.rmtree(work, ignore_errors=True)
        result["files"] = None
    return result


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
        "server_agi": status["agi"], "server_ami": status["ami"], "sampling_errors": sampler.errors[:5],
        "samples": samples, "ok": ok,
    }


def database_kind(options: argparse.Namespace) -> str:
    if options.postgres:
        return "postgresql (own database)"
    return str(options.database_url or "sqlite (temporary file)")


async def postgres_database(server_url: str, name: str, *, create: bool) -> str:
    """Create (or drop) the run's own database on the PostgreSQL server of ``server_url``; its URL."""
    engine = create_async_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"' if create else f'DROP DATABASE "{name}" WITH (FORCE)'))
    finally:
        await engine.dispose()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def private_media(shared: Path, name: str) -> Path:
    """A media folder of our own inside the shared one (Asterisk sees the same path): the server's recordings
    and its orphan recovery stay there, away from other runs' files; prompts are the shared ones."""
    media = shared / name
    media.mkdir()
    (media / "prompts").symlink_to("../prompts")
    return media


# --- report --------------------------------------------------------------------------------------


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
        f"end {mem['rss_end_mib']} / max {mem['rss_max_mib']}; slope {mem['slope_mib_per_h']} MiB/h "
        f"(threshold {mem['max_slope_mib_per_h']:g}: " + ("not judged, run too short" if not mem["judged"] else
                                                          "flat" if mem["flat"] else "GROWING") + ")",
        f"open fds: start {mem['fds_start']} / end {mem['fds_end']} / max {mem['fds_max']}; server CPU "
        f"{result['server_cpu_s']} s; GET /api/status ms {result['status_rtt_ms']}",
        f"peaks: our channels {peaks['our_channels']}, all Asterisk channels {peaks['asterisk_channels']}, "
        f"calls live {peaks['calls_live']}, AGI sessions {peaks['agi_sessions']}; left behind {result['left_behind']}",
        f"AGI commands seen on AMI: {calls['agi_commands']}; server log {result['server_log']['counts']}",
    ]
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
    outcome = asyncio.run(run_soak(options))
    if options.json:
        options.json.write_text(json.dumps(outcome, indent=2) + "\n")
    print(json.dumps({key: value for key, value in outcome.items() if key != "samples"}, indent=2))
    print()
    print(table(outcome))
    raise SystemExit(0 if outcome["ok"] else 1)
