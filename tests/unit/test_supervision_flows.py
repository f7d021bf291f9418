"""The call flows page, ``GET /supervision/flows`` (SQLite and PostgreSQL, the demo numbers): who may open it,
the flow document and the number's messages in English and French, the default flow of a number without one,
and a save being live on the very next call."""

from __future__ import annotations

import html as html_lib
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
import yaml

from cti.db import Database
from cti.ivr.default_flow import DEFAULT_FLOW
from cti.ivr.documents import import_document
from cti.ivr.flow import Condition, parse_flow
from cti.supervision.flows_page import MESSAGES, condition_text, prompt_uses
from cti.web.i18n import LANGUAGES
from tests.support.ivr import demo_ivr
from tests.support.supervision_ivr import AGENT, PagesServer, page_config, pages_server

PAGE = "/supervision/flows"
SMALL_FLOW: dict[str, Any] = {"start": "main", "nodes": {
    "main": {"type": "menu", "prompt": "main-menu", "options": {"1": "end"}, "on_failure": "end"},
    "end": {"type": "hangup", "prompts": ["goodbye"]}}}


@pytest.fixture
async def server(database: Database) -> AsyncIterator[PagesServer]:
    async with pages_server(await demo_ivr(database)) as started:
        yield started


def textarea(html: str) -> str:
    start = html.index('data-testid="flow-text">') + len('data-testid="flow-text">')
    return html_lib.unescape(html[start:html.index("</textarea>", start)])


def message_rows(html: str) -> list[tuple[str, str]]:
    """(node, prompt) of each row of the messages table."""
    return re.findall(r'data-testid="message-row" data-node="([^"]+)" data-prompt="([^"]+)"', html)


async def test_an_anonymous_visit_goes_to_the_login_form_and_agents_are_refused(server: PagesServer) -> None:
    response, _html = await server.page(PAGE, role=None)
    assert (response.status, response.headers["Location"]) == (303, "/login?next=/supervision/flows")
    response, _html = await server.page(PAGE, role="agent")
    assert response.status == 403
    status, _body = await server.api("POST", "/api/ivr/flows/validate", token=AGENT, json=SMALL_FLOW)
    assert status == 403


async def test_the_stored_flow_is_in_the_editor_as_yaml_and_json(server: PagesServer) -> None:
    response, html = await server.page(PAGE)
    assert response.status == 200
    assert '<a href="/supervision/flows" data-testid="nav-flows" aria-current="page">' in html
    stored = (await server.ivr.stored("5551000")).flow
    assert yaml.safe_load(textarea(html)) == stored
    config = page_config(html, "flows-config")
    assert config["service"]["number"] == "5551000"
    assert json.loads(config["service"]["json"]) == stored
    assert yaml.safe_load(config["service"]["yaml"]) == stored
    assert 'data-testid="flow-version" data-version="1">Flow version 1</p>' in html
    assert 'data-testid="default-flow"' not in html
    assert '<script src="/static/supervision/flows.js" defer></script>' in html


async def test_the_numbers_messages_say_when_each_prompt_plays_and_what_it_says(server: PagesServer) -> None:
    _response, html = await server.page(PAGE + "?number=5551000")
    rows = message_rows(html)
    assert rows[:3] == [("refuse", "blocked-caller"), ("hidden-number", "anonymous-caller"),
                        ("welcome", "welcome-vip")]
    assert ("language", "choose-language") in rows and ("closed", "next-opening") in rows
    assert ("main", "invalid-input") in rows and ("main", "no-input") in rows
    vip = html.split('data-prompt="welcome-vip">')[1].split("</tr>")[0]
    assert "when caller: vip" in vip
    welcome = html.split('data-node="welcome" data-prompt="welcome">')[1].split("</tr>")[0]
    assert "otherwise" in welcome and "Welcome" in welcome  # the catalog's English text


async def test_the_page_speaks_french(server: PagesServer) -> None:
    _response, html = await server.page(PAGE + "?lang=fr")
    assert "Parcours d&#39;appel et messages" in html
    vip = html.split('data-prompt="welcome-vip">')[1].split("</tr>")[0]
    assert "si caller: vip" in vip
    assert page_config(html, "flows-config")["messages"]["flows.line"] == "ligne {line}"


async def test_a_number_without_a_flow_shows_the_default_flow_it_runs(server: PagesServer) -> None:
    await import_document(server.ivr, {"number": "5554000", "name": "New line"}, author="test")
    _response, html = await server.page(PAGE + "?number=5554000")
    assert 'data-testid="default-flow"' in html
    assert parse_flow(yaml.safe_load(textarea(html))) == DEFAULT_FLOW
    assert ("exceptional-closure", "exceptional-closure") in message_rows(html)


async def test_the_saved_notice_shows_only_a_version_number(server: PagesServer) -> None:
    _response, html = await server.page(PAGE + "?saved=3")
    assert 'data-testid="saved-notice">Saved (version 3): the next call uses it.</p>' in html
    _response, html = await server.page(PAGE + "?saved=%3Cb%3E")
    assert 'data-testid="saved-notice"' not in html


async def test_a_saved_flow_is_live_on_the_next_call_without_a_restart(server: PagesServer) -> None:
    before = await server.ivr.prepare("5551000", "0612345678")
    assert before is not None and before.flow.start == "screen"  # parsed and cached for version 1
    status, body = await server.api("PUT", "/api/ivr/services/5551000/flow", data=yaml.safe_dump(SMALL_FLOW),
                                    headers={"Content-Type": "application/yaml"})
    assert (status, body["version"]) == (200, 2)
    after = await server.ivr.prepare("5551000", "0612345678")
    assert after is not None and after.flow.start == "main" and set(after.flow.nodes) == {"main", "end"}
    _response, html = await server.page(PAGE)
    assert 'data-version="2"' in html and message_rows(html) == [  # nodes in the document's order (YAML sorted them)
        ("end", "goodbye"), ("main", "main-menu"), ("main", "invalid-input"), ("main", "no-input")]


async def test_a_refused_flow_lists_every_reason_with_its_location(server: PagesServer) -> None:
    broken: dict[str, Any] = {"start": "main", "nodes": {
        "main": {"type": "menu", "prompt": "main-menu", "options": {"1": "billng"}, "on_failure": "end",
                 "timeout_s": 99}}}
    status, body = await server.api("POST", "/api/ivr/flows/validate", json=broken)
    assert status == 422 and body["errors"][0].startswith("nodes.main.timeout_s: ")
    broken["nodes"]["main"]["timeout_s"] = 5
    status, body = await server.api("PUT", "/api/ivr/services/5551000/flow", json=broken)
    assert status == 422
    assert "node 'main': key 1 goes to 'billng', which does not exist" in body["errors"]
    assert (await server.ivr.stored("5551000")).flow_version == 1  # nothing saved


def test_prompt_uses_follow_the_engines_order() -> None:
    flow = parse_flow({"start": "a", "nodes": {
        "a": {"type": "play", "prompts": ["welcome"], "say_next_opening": True, "next": "b",
              "variants": [{"when": {"caller": ["vip"], "wait": {"queue": "support", "max_s": 60}},
                            "prompts": ["welcome-vip"]}]},
        "b": {"type": "menu", "prompt": "main-menu", "options": {"1": "c"}, "on_failure": "c",
              "invalid_prompt": None},
        "c": {"type": "voicemail"}}})
    assert prompt_uses(flow.nodes["a"]) == [
        ("variant", "caller: vip; wait: queue=support max_s=60", "welcome-vip"),
        ("otherwise", "", "welcome"), ("next_opening", "", "next-opening")]
    assert prompt_uses(flow.nodes["b"]) == [("menu", "", "main-menu"), ("no_input", "", "no-input")]
    assert prompt_uses(flow.nodes["c"]) == []
    assert condition_text(Condition()) == ""  # "always"


def test_every_flows_text_is_in_english_and_french() -> None:
    assert all(key.startswith("flows.") for key in MESSAGES)
    assert all(MESSAGES[key][lang].strip() for key in MESSAGES for lang in LANGUAGES)
