"""``GET /metrics`` (SQLite and PostgreSQL): the Prometheus text format parsed back, each source's figures, roles."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from cti.db import Database, make_database
from cti.http.app import make_web_app
from cti.http.metrics import Family, Sources, add_routes, render
from cti.settings import DatabaseSettings, SecuritySettings
from tests.support.acd import Desk, make_desk
from tickets.models import Recording, Ticket, TranscriptionJob

ADMIN, SUPERVISOR, AGENT = "a" * 32, "s" * 32, "g" * 32
Client = TestClient[web.Request, web.Application]
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)')
STATUS: dict[str, Any] = {
    "healthy": True,
    "ami": {"connected": True, "live_channels": 3, "reconnects": 2},
    "agi": {"active_sessions": 4, "command_rtt_ms": {"count": 120, "p50": 1.5, "p99": 8.0},
            "setup_ms": {"count": 17, "p50": 2.0, "p99": 3.0}},
    "database": {"ok": True},
    "state": {"ok": False, "error": "down"},
}


def parse(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a scrape; fails on a line that is not the text format, or a sample without its TYPE."""
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    typed: set[str] = set()
    assert text.endswith("\n")
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            name, kind = line.split()[2:4]
            assert kind in ("gauge", "counter") and name not in typed
            typed.add(name)
        elif line.startswith("# HELP "):
            continue
        else:
            found = SAMPLE.match(line)
            assert found is not None, f"not a sample: {line!r}"
            name, labels, value = found.groups()
            assert name in typed, f"{name} has no TYPE line before it"
            pairs = frozenset((key, _unescape(text)) for key, text in LABEL.findall(labels or ""))
            samples[(name, pairs)] = float(value)
    return samples


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n"}.get(m[1], m[1]), text)


def value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


@dataclass
class Env:
    client: Client
    desk: Desk

    async def scrape(self, token: str = SUPERVISOR) -> tuple[int, str]:
        response = await self.client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        return response.status, await response.text()


async def _status() -> dict[str, Any]:
    return STATUS


@pytest.fixture
async def env(database: Database) -> AsyncIterator[Env]:
    desk = await make_desk(database)
    app = make_web_app(SecuritySettings(api_tokens={ADMIN: "admin", SUPERVISOR: "supervisor", AGENT: "agent"}), _status)
    add_routes(app, Sources(db=database, acd=desk.acd))
    async with TestClient(TestServer(app)) as client:
        yield Env(client, desk)


async def _work(db: Database) -> None:
    async with db.session() as session:
        session.add_all([Ticket(subject="a"), Ticket(subject="b"), Ticket(subject="c", status="resolved")])
        recordings = [Recording(path=f"recordings/{n}.wav", state=state)
                      for n, state in enumerate(("recorded", "transcribed", "transcribed"))]
        session.add_all(recordings)
        await session.flush()
        session.add_all([TranscriptionJob(recording_id=recordings[0].id),
                         TranscriptionJob(recording_id=recordings[1].id, status="done")])


async def test_the_scrape_parses_and_holds_every_sources_figures(env: Env, database: Database) -> None:
    await _work(database)
    acd = env.desk.acd
    await acd.login("alice")
    await acd.login("bob")
    await acd.pause("bob", "lunch")
    ringing = await env.desk.join()
    await env.desk.route()
    await env.desk.join()
    assert ringing.agent_id == "alice"
    status, text = await env.scrape()
    assert status == 200
    samples = parse(text)
    assert value(samples, "cti_agi_sessions_active") == 4
    assert value(samples, "cti_agi_sessions_total") == 17
    assert value(samples, "cti_agi_commands_total") == 120
    assert value(samples, "cti_agi_command_rtt_seconds", quantile="0.99") == 0.008
    assert value(samples, "cti_ami_connected") == 1 and value(samples, "cti_channels_live") == 3
    assert value(samples, "cti_source_up", source="database") == 1
    assert value(samples, "cti_source_up", source="state") == 0
    assert value(samples, "cti_acd_calls_waiting", queue="support") == 1
    assert value(samples, "cti_acd_calls_in_progress", queue="support") == 1
    assert value(samples, "cti_acd_calls_total", queue="support", result="offered") == 2
    assert value(samples, "cti_acd_agents", state="ringing") == 1
    assert value(samples, "cti_acd_agents", state="paused") == 1
    assert value(samples, "cti_acd_agents", state="logged_out") == 1
    assert value(samples, "cti_tickets", status="new") == 2 and value(samples, "cti_tickets", status="resolved") == 1
    assert value(samples, "cti_voicemail_recordings", state="transcribed") == 2
    assert value(samples, "cti_transcription_jobs", status="pending") == 1
    assert value(samples, "cti_transcription_jobs", status="done") == 1


async def test_http_requests_are_counted_by_route_pattern_and_status(env: Env) -> None:
    assert (await env.client.get("/metrics")).status == 401
    assert (await env.scrape(AGENT))[0] == 403
    assert (await env.client.get("/no/such/page")).status == 404
    await env.scrape(ADMIN)
    status, text = await env.scrape()
    samples = parse(text)
    assert status == 200
    assert value(samples, "cti_http_requests_total", method="GET", route="/metrics", status="401") == 1
    assert value(samples, "cti_http_requests_total", method="GET", route="/metrics", status="403") == 1
    assert value(samples, "cti_http_requests_total", method="GET", route="/metrics", status="200") == 1  # not this one
    assert value(samples, "cti_http_requests_total", method="GET", route="unmatched", status="404") == 1


async def test_without_the_database_the_other_figures_still_answer(env: Env) -> None:
    unreachable = make_database(DatabaseSettings(url="postgresql+asyncpg://cti:x@127.0.0.1:1/none"))
    app = make_web_app(SecuritySettings(api_tokens={SUPERVISOR: "supervisor"}), _status)
    add_routes(app, Sources(db=unreachable, acd=env.desk.acd))
    try:
        async with TestClient(TestServer(app)) as client:
            response = await client.get("/metrics", headers={"Authorization": f"Bearer {SUPERVISOR}"})
            samples = parse(await response.text())
    finally:
        await unreachable.close()
    assert response.status == 200
    assert value(samples, "cti_acd_calls_waiting", queue="support") == 0
    assert not [name for name, _ in samples if name == "cti_tickets"]


def test_labels_are_escaped_and_numbers_written_as_prometheus_reads_them() -> None:
    family = Family("cti_test", "gauge", "a help\nwith a line break").add(1.5, who='say "hi" \\ \n bye').add(2e-7)
    text = render([family, Family("cti_empty", "counter", "nothing yet")])
    assert "# HELP cti_test a help\\nwith a line break" in text
    samples = parse(text)
    assert value(samples, "cti_test", who='say "hi" \\ \n bye') == 1.5
    assert value(samples, "cti_test") == 2e-7
    assert render([Family("cti_n", "gauge", "n").add(float("nan")).add(float("inf"), side="up")]).splitlines()[2:] == [
        "cti_n NaN", 'cti_n{side="up"} +Inf']
