"""The composed server (cti.app) with a scripted AMI peer and scripted AGI calls: status, call rows, fallbacks."""

from __future__ import annotations

import gc
import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import select

from cti.app import CtiApp, build_app
from cti.db.migrate import upgrade_async
from cti.db.models import CallRecord
from cti.demo import seed_demo
from cti.prompts import PromptStore, build_placeholders
from cti.settings import Settings
from tests.fakes.agi_peer import AgiPeer, asterisk_env
from tests.fakes.ami_peer import AmiPeer
from tests.support.app import app_settings
from tests.support.ivr import MONDAY_10, fixed_clock, keys_by_prompt

TOKEN = "k" * 32
PROMPTS = {name: {"en": name, "fr": name} for name in
           ("welcome", "choose-language", "main-menu", "no-input", "invalid-input", "all-busy", "technical-problem",
            "technical-difficulty", "unknown-number", "closed", "next-opening")}


def _settings(tmp_path: Path, ami_port: int, db_url: str | None = None) -> Settings:
    return app_settings(tmp_path, ami_port, db_url, CTI_AMI__RECONNECT_MIN="0.05",
                        CTI_SECURITY__API_TOKENS=f'{{ "{TOKEN}" = "admin" }}')


@pytest.fixture
async def ami_peer() -> AsyncIterator[AmiPeer]:
    peer = AmiPeer()
    await peer.start()
    yield peer
    await peer.close()


async def _running_app(settings: Settings, *, migrate: bool = True) -> CtiApp:
    build_placeholders(PromptStore(settings.paths.prompts_dir), PROMPTS)
    if migrate:
        await upgrade_async(settings.database)
    app = build_app(settings, clock=fixed_clock(MONDAY_10))
    if migrate:
        assert app.ivr is not None
        await seed_demo(app.ivr)
    await app.start()
    await app.ami.wait_connected(5)
    return app


@pytest.fixture
async def app(tmp_path: Path, ami_peer: AmiPeer) -> AsyncIterator[CtiApp]:
    running = await _running_app(_settings(tmp_path, ami_peer.port))
    yield running
    await running.stop()


async def _rows(app: CtiApp) -> list[CallRecord]:
    async with app.db.session() as session:
        return list(await session.scalars(select(CallRecord)))


async def test_status_route_reports_every_part(app: CtiApp) -> None:
    url = f"http://127.0.0.1:{app.http_port}/api/status"
    async with aiohttp.ClientSession() as http:
        async with http.get(url) as anonymous:
            assert anonymous.status == 401
        async with http.get(url, headers={"Authorization": f"Bearer {TOKEN}"}) as response:
            body = await response.json()
    assert response.status == 200
    assert body["healthy"] is True
    assert body["ami"]["connected"] is True
    assert body["database"] == {"ok": True} and body["state"] == {"ok": True}
    assert body["agi"]["port"] == app.agi.port
    gc.collect()  # a full collection while the app runs: the status counts it
    async with aiohttp.ClientSession() as http, \
            http.get(url, headers={"Authorization": f"Bearer {TOKEN}"}) as response:
        collector = (await response.json())["collector"]
    assert collector["full_collections"] >= 1 and collector["full_pause_ms_last"] is not None
    assert collector["full_pause_ms_max"] >= collector["full_pause_ms_last"]


async def test_call_gets_a_row_with_its_path_and_the_digits_typed(app: CtiApp) -> None:
    env = asterisk_env(extension="5551000", callerid="0612345678")
    peer = await AgiPeer(app.agi.port, keys_by_prompt({"choose-language": "2", "main-menu": "9"}), env=env).run()
    assert peer.errors == []
    assert peer.commands[0] == "ANSWER"
    assert any("/prompts/en/welcome" in c for c in peer.commands)
    assert any("/prompts/fr/main-menu" in c for c in peer.commands)  # the caller chose French
    assert "SET VARIABLE CHANNEL(language) fr" in peer.commands
    assert "SET VARIABLE CTI_NEXT cti-voicemail,request,1" in peer.commands
    [row] = await _rows(app)
    assert (row.caller_number, row.called_number, row.outcome, row.language) == (
        "0612345678", "5551000", "to_voicemail", "fr")
    assert row.path == "screen:default > hours:open > welcome > language:fr > main:9 > message"


async def test_unknown_number_hears_so_and_is_recorded(app: CtiApp) -> None:
    env = asterisk_env(extension="999", uniqueid="1.2")
    peer = await AgiPeer(app.agi.port, keys_by_prompt({}), env=env).run()
    assert any("/prompts/en/unknown-number" in c for c in peer.commands)
    [row] = await _rows(app)
    assert row.outcome == "unknown_number"


async def test_a_failing_command_plays_the_fallback_prompt(app: CtiApp) -> None:
    def broken(command: str) -> str:
        return "510 Invalid or unknown command" if "main-menu" in command else "200 result=0"

    peer = await AgiPeer(app.agi.port, broken, env=asterisk_env(extension="5552000")).run()
    assert any("/prompts/fr/technical-difficulty" in c for c in peer.commands)
    assert peer.commands[-1] == "SET VARIABLE CTI_NEXT cti-voicemail,request,1"  # the flow's fallback
    [row] = await _rows(app)
    assert row.outcome == "error" and row.path.endswith("error")


async def test_caller_hanging_up_is_recorded_as_abandoned(app: CtiApp) -> None:
    await AgiPeer(app.agi.port, keys_by_prompt({}, hang_up_on="main-menu"), env=asterisk_env(extension="5551000")).run()
    [row] = await _rows(app)
    assert row.outcome == "abandoned"
    assert row.ended_at is not None


async def test_database_down_still_greets_the_caller(tmp_path: Path, ami_peer: AmiPeer) -> None:
    settings = _settings(tmp_path, ami_peer.port, db_url="postgresql+asyncpg://cti:x@127.0.0.1:1/none")
    app = await _running_app(settings, migrate=False)
    try:
        peer = await AgiPeer(app.agi.port, keys_by_prompt({}), env=asterisk_env(extension="5551000")).run()
        assert any("/prompts/en/welcome" in c for c in peer.commands)
        assert not any("unknown-number" in c for c in peer.commands)
        assert "SET VARIABLE CTI_NEXT cti-voicemail,request,1" in peer.commands  # the default flow takes a message
        status = await app.status()
        assert status["healthy"] is False and status["database"]["ok"] is False
    finally:
        await app.stop()


PATH_VALUES = {"number": "5551000", "id": "x", "name": "x", "path": "cti.css"}  # other placeholders: "1"
# The only routes anyone may reach without logging in; a new one must be added here on purpose.
PUBLIC_ROUTES = {("GET", "/login"), ("POST", "/login"), ("POST", "/logout"), ("POST", "/api/auth/session"),
                 ("GET", "/static/{path}")}


async def test_every_route_of_the_composed_app_is_role_checked_and_denied_without_a_token(app: CtiApp) -> None:
    """Pages redirect an anonymous GET to the login form; every other non-public route answers 401."""
    from cti.http.auth import declared_roles, is_page, is_public

    routes = [r for r in app.web_app.router.routes() if r.method != "HEAD" and r.resource is not None]
    assert any(r.resource is not None and "/api/tickets" in r.resource.canonical for r in routes)
    public = {(r.method, r.resource.canonical) for r in routes if r.resource is not None and is_public(r.handler)}
    assert public == PUBLIC_ROUTES
    async with aiohttp.ClientSession() as http:
        for route in routes:
            assert route.resource is not None
            if (route.method, route.resource.canonical) in PUBLIC_ROUTES:
                continue
            assert declared_roles(route.handler), f"{route.method} {route.resource} declares no roles"
            path = re.sub(r"\{(\w+)\}", lambda m: PATH_VALUES.get(m[1], "1"), route.resource.canonical)
            expected = 303 if is_page(route.handler) and route.method == "GET" else 401
            url = f"http://127.0.0.1:{app.http_port}{path}"
            async with http.request(route.method, url, allow_redirects=False) as response:
                assert response.status == expected, f"{route.method} {path} answered {response.status}"


async def test_nine_at_the_menu_hands_the_call_to_voicemail_through_the_dialplan(app: CtiApp) -> None:
    keys = keys_by_prompt({"choose-language": "1", "main-menu": "9"})
    peer = await AgiPeer(app.agi.port, keys, env=asterisk_env(extension="5551000")).run()
    assert "SET VARIABLE CTI_NEXT cti-voicemail,request,1" in peer.commands
    assert "HANGUP" not in peer.commands  # the channel goes on to [cti-voicemail]
    [row] = await _rows(app)
    assert row.outcome == "to_voicemail"
    assert row.path == "screen:default > hours:open > welcome > language:en > main:9 > message"
