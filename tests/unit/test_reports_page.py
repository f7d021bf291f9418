"""The reports' routes (SQLite and PostgreSQL): roles, JSON, CSV download, refusals, and the page."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from cti.call_records import open_call
from cti.db import Database
from cti.db.base import utcnow
from cti.db.models import CallRecord
from cti.http.app import make_web_app
from cti.settings import SecuritySettings, SupervisionSettings
from cti.supervision.reports_page import Reports, add_routes
from tests.support.acd import make_desk, queue

ADMIN, SUPERVISOR, AGENT = "a" * 32, "s" * 32, "g" * 32
API = "/api/reports/calls"
PAGE = "/supervision/reports"

Client = TestClient[web.Request, web.Application]


async def _status() -> dict[str, Any]:
    return {"healthy": True}


@pytest.fixture
async def client(database: Database) -> AsyncIterator[Client]:
    desk = await make_desk(database, queues=(queue("support", service_level_s=60),))
    settings = SupervisionSettings(timezone="UTC")
    app = make_web_app(SecuritySettings(api_tokens={ADMIN: "admin", SUPERVISOR: "supervisor", AGENT: "agent"}), _status)
    add_routes(app, Reports(database, desk.acd, settings))
    now = utcnow()
    for index, wait in enumerate((10.0, 50.0)):  # both within the queue's 60 s target
        await open_call(database, CallRecord(uniqueid=f"p.{index}", channel="PJSIP/t", called_number="5551000",
                                             queue="support", outcome="answered", answered_at=now, wait_s=wait,
                                             talk_s=120.0, started_at=now))
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("path", [API, PAGE])
async def test_agents_are_refused_and_strangers_asked_to_log_in(client: Client, path: str) -> None:
    assert (await client.get(path, headers=_auth(AGENT))).status == 403
    anonymous = await client.get(path, allow_redirects=False)
    if path == PAGE:
        assert anonymous.status == 303 and anonymous.headers["Location"].startswith("/login?next=")
    else:
        assert anonymous.status == 401


@pytest.mark.parametrize("token", [ADMIN, SUPERVISOR])
async def test_todays_report_by_default(client: Client, token: str) -> None:
    response = await client.get(API, headers=_auth(token))
    assert response.status == 200
    report = await response.json()
    today = utcnow().date().isoformat()
    assert (report["from"], report["to"], report["group"], report["timezone"]) == (today, today, "day", "UTC")
    [row] = report["rows"]
    assert (row["key"], row["offered"], row["answered"], row["service_level_pct"], row["asa_s"]) == (
        today, 2, 2, 100.0, 30.0)  # the queue's own 60 s target, not the default 20 s
    assert [hour["calls_per_hour"] for hour in report["staffing"]["hours"]] == [2.0]


async def test_csv_export_is_a_download(client: Client) -> None:
    today = utcnow().date().isoformat()
    response = await client.get(API, params={"from": today, "to": today, "group": "queue", "format": "csv"},
                                headers=_auth(SUPERVISOR))
    assert response.status == 200
    assert response.content_type == "text/csv"
    assert response.headers["Content-Disposition"] == f'attachment; filename="calls-{today}-{today}-queue.csv"'
    lines = (await response.text()).splitlines()
    assert lines[0].startswith("queue,offered,answered") and lines[1].startswith("support,2,2")
    assert lines[-1].startswith("total,2,2")


async def test_bad_ranges_are_refused_with_every_reason(client: Client) -> None:
    response = await client.get(API, params={"from": "2025-02-30", "group": "month"}, headers=_auth(ADMIN))
    assert response.status == 400
    body = await response.json()
    assert body["error"] == "reports.invalid" and len(body["errors"]) == 2


async def test_the_page_has_the_form_the_csv_link_and_its_script(client: Client) -> None:
    response = await client.get(PAGE, params={"lang": "fr"}, headers=_auth(SUPERVISOR))
    assert response.status == 200
    html = await response.text()
    assert "Rapports d&#39;appels" in html and "Télécharger en CSV" in html
    assert 'data-testid="report-csv"' in html and "format=csv" in html
    assert '<script src="/static/supervision/reports.js" defer></script>' in html
    assert "<script>" not in html and "style=" not in html  # the CSP allows no inline script or style
    found = re.search(r'<script type="application/json" id="reports-config">(.*?)</script>', html, re.S)
    assert found is not None
    config = json.loads(found.group(1))
    assert config["today"] == utcnow().date().isoformat()
    assert config["messages"]["reports.col.service_level_pct"] == "Niveau de service %"
