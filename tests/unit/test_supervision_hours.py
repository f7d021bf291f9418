"""The opening hours page, ``GET /supervision/hours`` (SQLite and PostgreSQL, the demo numbers, the clock on
Monday 23 November 2026 at 10:00 in Paris): who may open it, the stored hours in the form in English and French,
the state now and the override, and the API's refusal paths matching the page's fields."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from cti.db import Database
from cti.ivr.documents import import_document
from cti.supervision.hours_page import MESSAGES, upcoming_holidays
from cti.web.i18n import LANGUAGES
from tests.support.ivr import MONDAY_10, demo_ivr, ivr_service
from tests.support.supervision_ivr import AGENT, PagesServer, input_values, page_config, pages_server

PAGE = "/supervision/hours"


@pytest.fixture
async def server(database: Database) -> AsyncIterator[PagesServer]:
    async with pages_server(await demo_ivr(database)) as started:
        yield started


def data_paths(html: str) -> set[str]:
    return {path for value in re.findall(r'data-path="([^"]*)"', html) for path in value.split()}


async def test_an_anonymous_visit_goes_to_the_login_form(server: PagesServer) -> None:
    response, _html = await server.page(PAGE, role=None)
    assert response.status == 303
    assert response.headers["Location"] == "/login?next=/supervision/hours"


async def test_agents_may_not_open_the_page_nor_change_the_hours(server: PagesServer) -> None:
    response, _html = await server.page(PAGE, role="agent")
    assert response.status == 403
    status, _body = await server.api("PUT", "/api/ivr/services/5551000/override", token=AGENT,
                                     json={"state": "closed", "until": "2026-11-23T12:00:00+01:00"})
    assert status == 403


@pytest.mark.parametrize("role", ["supervisor", "admin"])
async def test_the_first_number_is_shown_with_its_weekly_hours_holidays_and_dates(server: PagesServer,
                                                                                   role: str) -> None:
    response, html = await server.page(PAGE, role=role)
    assert (response.status, response.content_type) == (200, "text/html")
    assert '<a href="/supervision/hours" data-testid="nav-hours" aria-current="page">' in html
    assert '<option value="5551000" selected>5551000 · Help desk (English)</option>' in html
    monday = html.split('data-testid="day-monday"')[1].split("</tr>")[0]
    assert input_values(monday, "range-input") == ["08:30-12:30", "13:30-18:00"]
    saturday = html.split('data-testid="day-saturday"')[1].split("</tr>")[0]
    assert input_values(saturday, "range-input") == []
    assert '<option value="FR" selected>FR</option>' in html
    assert 'value="Christmas Eve" data-testid="dated-label"' in html
    assert 'value="2026-12-24" data-testid="dated-from"' in html
    assert 'value="08:30-12:00" data-testid="dated-hours"' in html
    assert '<time datetime="2026-12-25">2026-12-25</time>' in html  # the next public holiday in France
    assert '<script src="/static/supervision/hours.js" defer></script>' in html


async def test_the_state_now_and_the_suggested_override_are_in_the_services_zone(server: PagesServer) -> None:
    _response, html = await server.page(PAGE)
    assert '<strong id="status" data-testid="hours-status" data-status="open">Open</strong>' in html
    assert "Changes at 2026-11-23 12:30" in html  # the lunch break
    assert 'data-testid="override-until"\n          value="2026-11-23T11:00"' in html  # now + 1 h, Paris time
    assert 'value="" data-testid="override-none"\n        checked' in html
    config = page_config(html, "hours-config")
    assert config["service"]["number"] == "5551000"
    assert config["service"]["timezone"] == "Europe/Paris"
    assert config["messages"]["hours.status.override_closed"] == "Closed (manual override)"
    assert "974" in config["countries"]["FR"]  # subdivisions offered for the region field


async def test_the_page_speaks_french(server: PagesServer) -> None:
    response, html = await server.page(PAGE + "?lang=fr")
    assert response.status == 200 and '<html lang="fr">' in html
    assert "<h1>Horaires d&#39;ouverture</h1>" in html
    assert '<th scope="row">Lundi</th>' in html
    assert '<strong id="status" data-testid="hours-status" data-status="open">Ouvert</strong>' in html
    assert page_config(html, "hours-config")["messages"]["hours.status.closed"] == "Fermé"


async def test_an_active_override_is_shown_with_its_expiry_and_reason(server: PagesServer) -> None:
    until = MONDAY_10 + timedelta(hours=2)
    await server.ivr.set_override("5551000", "closed", until, "Staff meeting", author="test")
    _response, html = await server.page(PAGE + "?number=5551000")
    assert 'data-status="override_closed">Closed (manual override)</strong>' in html
    assert 'data-testid="hours-reason">Staff meeting</span>' in html
    assert 'value="closed" data-testid="override-closed"\n        checked' in html
    assert 'value="2026-11-23T12:00"' in html
    assert 'value="Staff meeting"' in html


async def test_another_number_is_chosen_by_its_number_and_an_unknown_one_is_404(server: PagesServer) -> None:
    _response, html = await server.page(PAGE + "?number=5552000")
    assert '<option value="5552000" selected>' in html
    assert page_config(html, "hours-config")["service"]["number"] == "5552000"
    response, _html = await server.page(PAGE + "?number=5559999")
    assert response.status == 404


async def test_a_number_without_hours_says_so_and_cannot_be_overridden_yet(server: PagesServer) -> None:
    await import_document(server.ivr, {"number": "5554000", "name": "Always open"}, author="test")
    _response, html = await server.page(PAGE + "?number=5554000")
    assert 'data-testid="not-configured"' in html
    assert '<fieldset disabled>' in html
    assert '<strong id="status" data-testid="hours-status" data-status="open">Open</strong>' in html
    assert 'name="timezone" list="timezones" value="Europe/Paris"' in html


async def test_without_any_number_the_page_says_how_to_add_one(database: Database) -> None:
    async with pages_server(ivr_service(database)) as server:
        response, html = await server.page(PAGE)
    assert response.status == 200
    assert 'data-testid="no-service"' in html and "hours-config" not in html


async def test_every_reason_the_api_gives_names_a_field_of_the_page(server: PagesServer) -> None:
    """The page shows a refusal next to the field whose data-path the reason's path continues."""
    _response, html = await server.page(PAGE)
    fields = data_paths(html)
    bad = {"timezone": "Mars/Olympus", "weekly": {"monday": ["08:00-12:00", "11:00-13:00"], "tuesday": "9-5"},
           "holidays": {"country": "XX"}}
    status, body = await server.api("PUT", "/api/ivr/services/5551000/hours", json=bad)
    assert status == 422 and len(body["errors"]) == 4
    for reason in body["errors"]:
        path = reason.split(": ", 1)[0]
        assert any(path == field or path.startswith((field + ".", field + "[")) for field in fields), reason
    status, body = await server.api("PUT", "/api/ivr/services/5551000/override",
                                     json={"state": "closed", "until": "2026-11-23T09:00:00+01:00"})
    assert status == 422 and body["errors"][0].startswith("override.until: ")
    assert "override.until" in fields


def test_upcoming_holidays_follow_the_country_option() -> None:
    upcoming = upcoming_holidays({"country": "FR", "language": "en_US"}, MONDAY_10, "Europe/Paris")
    assert upcoming[0] == {"date": "2026-12-25", "name": "Christmas Day"}
    assert [day["date"] for day in upcoming] == sorted(day["date"] for day in upcoming)
    assert upcoming_holidays(None, MONDAY_10, "Europe/Paris") == []
    assert upcoming_holidays({"country": "XX"}, MONDAY_10, "Europe/Paris") == []


def test_every_hours_text_is_in_english_and_french() -> None:
    assert all(key.startswith("hours.") for key in MESSAGES)
    assert all(MESSAGES[key][lang].strip() for key in MESSAGES for lang in LANGUAGES)
