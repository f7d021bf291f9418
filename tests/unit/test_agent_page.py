"""The agent desktop page, ``GET /agent`` (SQLite and PostgreSQL, the test ACD): the login redirect, the page's
configuration for its script in English and French, its static files, the notice for a login without an agent,
and the desktop's texts in both languages."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import ClientResponse

from cti.agents import pages
from cti.agents.messages import MESSAGES
from cti.db import Database
from cti.http.auth import SESSION_COOKIE
from cti.settings import AgentsSettings
from cti.web.i18n import LANGUAGES, catalogue
from tests.support.acd import make_desk
from tests.support.desktop import DesktopServer, desktop_server

CONFIG = re.compile(r'<script type="application/json" id="desk-config">(.*?)</script>', re.DOTALL)
DESKTOP_JS = '<script src="/static/agents/desktop.js"'


@pytest.fixture
async def server(database: Database) -> AsyncIterator[DesktopServer]:
    async with desktop_server(await make_desk(database)) as started:
        yield started


def cookie(token: str) -> dict[str, str]:
    """What a signed-in browser sends (the cookie, no Origin: a page GET needs none)."""
    return {"Cookie": f"{SESSION_COOKIE}={token}"}


async def page(server: DesktopServer, token: str, query: str = "") -> tuple[ClientResponse, str]:
    response = await server.client.get("/agent" + query, headers=cookie(token), allow_redirects=False)
    return response, await response.text()


def desk_config(html: str) -> dict[str, Any]:
    found = CONFIG.search(html)
    assert found is not None, "no desk-config script in the page"
    config: dict[str, Any] = json.loads(found.group(1))
    return config


async def test_an_anonymous_visit_goes_to_the_login_form_and_back(server: DesktopServer) -> None:
    response = await server.client.get("/agent", allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == "/login?next=/agent"
    assert "desk-config" not in await response.text()


async def test_an_agent_gets_the_desktop_in_english_by_default(server: DesktopServer) -> None:
    token = await server.token("alice", agent_id="alice")
    response, html = await page(server, token)
    assert (response.status, response.content_type) == (200, "text/html")
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert '<html lang="en">' in html
    config = desk_config(html)
    assert (config["agent_id"], config["language"]) == ("alice", "en")
    assert config["outcomes"] == list(AgentsSettings().outcomes)
    assert config["messages"]["card.ringing"] == "Incoming call"
    assert set(config["messages"]) == set(MESSAGES)
    assert DESKTOP_JS in html and 'href="/static/agents/desktop.css"' in html
    assert 'data-testid="agent-name">Alice<' in html  # the ACD agent's name
    assert 'data-testid="not-linked"' not in html


async def test_the_desktop_speaks_french_when_asked(server: DesktopServer) -> None:
    token = await server.token("alice", agent_id="alice")
    response, html = await page(server, token, "?lang=fr")
    assert response.status == 200 and '<html lang="fr">' in html
    config = desk_config(html)
    assert (config["agent_id"], config["language"]) == ("alice", "fr")
    assert config["messages"]["card.ringing"] == "Appel entrant"
    assert config["messages"]["state.paused"] == "En pause"
    assert "Poste agent" in html  # the page's own texts too
    assert response.cookies["cti_lang"].value == "fr"  # remembered for the next pages


async def test_the_users_own_language_is_the_default(server: DesktopServer) -> None:
    token = await server.token("alice", agent_id="alice", language="fr")
    _response, html = await page(server, token)
    assert desk_config(html)["messages"]["card.ringing"] == "Appel entrant"
    _response, html = await page(server, token, "?lang=en")
    assert desk_config(html)["messages"]["card.ringing"] == "Incoming call"


async def test_the_desktops_static_files_are_served_without_login(server: DesktopServer) -> None:
    for path, kind in (("/static/agents/desktop.js", "javascript"), ("/static/agents/desktop.css", "text/css")):
        response = await server.client.get(path, allow_redirects=False)
        assert response.status == 200, path
        assert kind in response.content_type
        assert (await response.read()).strip()
    missing = await server.client.get("/static/agents/nothing.js", allow_redirects=False)
    assert missing.status == 404


async def test_a_login_without_an_agent_gets_the_notice_and_no_desktop(server: DesktopServer) -> None:
    token = await server.token("sam", "supervisor")
    response, html = await page(server, token)
    assert response.status == 200
    assert 'data-testid="not-linked"' in html
    assert "Your login is not linked to an agent" in html
    assert DESKTOP_JS not in html and 'id="desk-config"' not in html


async def test_a_supervisor_linked_to_an_agent_gets_the_desktop(server: DesktopServer) -> None:
    token = await server.token("sam", "supervisor", agent_id="bob")
    _response, html = await page(server, token)
    assert desk_config(html)["agent_id"] == "bob"
    assert DESKTOP_JS in html and 'data-testid="not-linked"' not in html


async def test_every_desktop_text_is_in_english_and_french() -> None:
    registered = catalogue()
    assert len(MESSAGES) > 50
    for key, texts in MESSAGES.items():
        assert set(texts) == set(LANGUAGES), key
        assert all(texts[lang].strip() for lang in LANGUAGES), key
        assert registered[key] == texts, key  # registered at import (register_messages refuses half a text)
    french = pages.script_messages("fr")
    english = pages.script_messages("en")
    assert french.keys() == english.keys() == MESSAGES.keys()
    assert french["card.ringing"] == "Appel entrant" and english["card.ringing"] == "Incoming call"
    # the placeholders the script fills are in both languages
    for key, texts in MESSAGES.items():
        assert set(re.findall(r"{\w+}", texts["en"])) == set(re.findall(r"{\w+}", texts["fr"])), key
