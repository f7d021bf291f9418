"""Hostile text in every text field of the main write routes, on SQLite and PostgreSQL.

Each answer must be a clear 4xx JSON error (``error`` and ``message``) or a success that stored the text
verbatim (read back where the route echoes it), never a 500; afterwards every table still exists and the
reads still work. Names that become paths (prompt names, static files, attachments) must never escape their
folder, and values that reach Asterisk must not carry a line break.

The server is the composed one (``cti.app.build_app``) with a scripted AMI peer, started as in test_app.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from sqlalchemy import func, select
from yarl import URL

from cti.app import CtiApp, build_app
from cti.db import Database
from cti.db.base import Base
from cti.demo import seed_demo
from cti.prompts import PromptStore, build_placeholders
from cti.settings import DatabaseSettings
from tests.fakes.ami_peer import AmiPeer
from tests.support.app import app_settings
from tests.support.ivr import MONDAY_10, fixed_clock
from tickets.models import Attachment
from tickets.types import NewTicket

TOKEN = "i" * 32
PASSWORD = "a long enough password"
ATTACKS = {
    "sql-quote": "'; DROP TABLE calls; --",
    "sql-or": "1 OR 1=1",
    "sql-dquote": '" OR ""="',
    "sql-union": "x' UNION SELECT password_hash FROM users --",
    "rtl-override": "\u202etxt.exe",
    "combining": "Zoe\u0308\u0301\u0301",
    "astral": "\U0001f600\U0001f469\u200d\U0001f4bb",
    "zero-width": "a\u200bb\ufeff",
    "lone-surrogate": "a\ud800b",
    "nul": "a\x00b",
    "very-long": "A" * 100_000,
    "markup": "<script>alert(1)</script>{{7*7}}${7*7}%s%n",
    "line-break": "x\r\nX-Injected: 1",
    "trailing-newline": "5551000\n",
    "traversal": "../../etc/passwd",
}
PROMPTS = {name: {"en": name, "fr": name} for name in ("welcome", "choose-language", "main-menu", "no-input",
                                                         "invalid-input", "all-busy", "technical-difficulty")}
Echo = Callable[[Any], Any]


@dataclass(frozen=True)
class Field:
    """One text field of one route: ``body(value)`` is the request's JSON with ``value`` in that field;
    ``echo`` finds the stored value in a success's answer (None: the route does not return it)."""

    route: str  # "METHOD /path"
    name: str
    body: Callable[[str], Any]
    echo: Echo | None = None


@dataclass
class Seeds:
    ticket: int
    contact: int
    user: int
    serial: itertools.count[int]

    def number(self) -> str:
        """A phone number no other contact has (contacts' numbers are unique)."""
        return f"+3361{next(self.serial):07d}"


@pytest.fixture
async def ami_peer() -> AsyncIterator[AmiPeer]:
    peer = AmiPeer()
    await peer.start()
    yield peer
    await peer.close()


@pytest.fixture
async def app(tmp_path: Path, ami_peer: AmiPeer, db_settings: DatabaseSettings) -> AsyncIterator[CtiApp]:
    settings = app_settings(tmp_path, ami_peer.port, db_settings.url, CTI_AMI__RECONNECT_MIN="0.05",
                            CTI_SECURITY__API_TOKENS=f'{{ "{TOKEN}" = "admin" }}',
                            CTI_SECURITY__LOGIN_FAILURES_PER_ADDRESS="100000",
                            CTI_SECURITY__LOGIN_FAILURES_PER_USER="1000")  # the limits have tests of their own
    build_placeholders(PromptStore(settings.paths.prompts_dir), PROMPTS)
    built = build_app(settings, clock=fixed_clock(MONDAY_10))
    assert built.ivr is not None
    await seed_demo(built.ivr)
    await built.start()
    await built.ami.wait_connected(5)
    yield built
    await built.stop()


@pytest.fixture
async def http(app: CtiApp) -> AsyncIterator[Http]:
    async with aiohttp.ClientSession(f"http://127.0.0.1:{app.http_port}") as session:
        yield Http(session)


@dataclass
class Http:
    session: aiohttp.ClientSession

    async def send(self, route: str, body: Any = None, *, raw_path: str | None = None) -> tuple[int, Any]:
        """``raw_path``: sent exactly as given (already percent-encoded), not normalised by the client."""
        method, path = route.split(" ", 1)
        url = URL(raw_path, encoded=True) if raw_path is not None else path
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with self.session.request(method, url, json=body, headers=headers) as response:
            raw = await response.read()
            is_json = response.content_type == "application/json"
            return response.status, json.loads(raw) if is_json else raw


async def _seeds(app: CtiApp, http: Http) -> Seeds:
    ticket = await app.tickets.create(NewTicket(subject="printer on fire", source="phone"))
    status, contact = await http.send("POST /api/contacts", {"name": "Seed", "numbers": ["+33612340000"]})
    assert status == 201, contact
    status, user = await http.send("POST /api/users", {"username": "seed", "password": PASSWORD, "role": "agent"})
    assert status == 201, user
    return Seeds(ticket.id, contact["id"], user["id"], itertools.count(1))


def _clear_answer(where: str, status: int, body: Any) -> None:
    """A refusal is a 4xx that says what is wrong in JSON; nothing is ever a 500."""
    assert status < 500, f"{where}: {status} {body!r:.300}"
    if 400 <= status < 500:
        assert isinstance(body, dict), f"{where}: {status} is not JSON: {body!r:.200}"
        assert isinstance(body.get("error"), str) and body["error"], f"{where}: {body}"
        assert isinstance(body.get("message"), str) and body["message"], f"{where}: {body}"


async def _hammer(http: Http, fields: list[Field]) -> int:
    """Every attack in every field; returns how many were accepted (stored verbatim)."""
    accepted = 0
    for field in fields:
        for kind, value in ATTACKS.items():
            where = f"{field.route} {field.name}={kind}"
            status, body = await http.send(field.route, field.body(value))
            _clear_answer(where, status, body)
            if status < 300 and field.echo is not None:
                stored = field.echo(body)  # names are trimmed: surrounding blanks are a normalisation, not harm
                assert stored in (value, value.strip()), f"{where}: stored {stored!r:.100}, not verbatim"
                accepted += 1
    return accepted


async def _tables_intact(database: Database, http: Http) -> None:
    """Nothing was dropped or emptied by an injection: every table answers, and the API reads still work."""
    async with database.session() as session:
        for table in Base.metadata.sorted_tables:
            await session.scalar(select(func.count()).select_from(table))
        assert await session.scalar(select(func.count()).select_from(Base.metadata.tables["service_numbers"])) == 2
    for route in ("GET /api/contacts", "GET /api/tickets", "GET /api/users", "GET /api/acd/config",
                  "GET /api/ivr/services", "GET /api/blocked-numbers"):
        status, body = await http.send(route)
        assert status == 200, f"{route} answered {status} after the attacks: {body!r:.200}"


# --- the write routes ------------------------------------------------------------------------------------


def _contact_fields(seeds: Seeds) -> list[Field]:
    def new(name: str) -> Callable[[str], Any]:
        return lambda value: {"name": "Injected", "numbers": [seeds.number()], name: value}

    def edit(name: str) -> Callable[[str], Any]:
        return lambda value: {name: value}

    one = f"PATCH /api/contacts/{seeds.contact}"
    return [
        Field("POST /api/contacts", "name", new("name"), lambda body: body["name"]),
        Field("POST /api/contacts", "email", new("email"), lambda body: body["email"]),
        Field("POST /api/contacts", "company", new("company"), lambda body: body["company"]["name"]),
        Field("POST /api/contacts", "language", new("language"), lambda body: body["language"]),
        Field("POST /api/contacts", "contract_level", lambda value: {"name": "X", "numbers": [seeds.number()],
                                                                     "company": "Acme", "contract_level": value}),
        Field("POST /api/contacts", "numbers", lambda value: {"name": "X", "numbers": [value]}),
        Field(one, "name", edit("name"), lambda body: body["name"]),
        Field(one, "email", edit("email"), lambda body: body["email"]),
        Field(one, "numbers", lambda value: {"numbers": [value]}),
        Field("POST /api/companies", "name", lambda value: {"name": value}, lambda body: body["name"]),
        Field("POST /api/companies", "contract_level", lambda value: {"name": "Co", "contract_level": value}),
    ]


def _user_fields(seeds: Seeds) -> list[Field]:
    def new(name: str) -> Callable[[str], Any]:
        return lambda value: {"username": f"u{next(seeds.serial)}", "password": PASSWORD, "role": "agent",
                              name: value}

    one = f"/api/users/{seeds.user}"
    return [
        Field("POST /api/users", "username", lambda value: {"username": value, "password": PASSWORD,
                                                            "role": "agent"}),
        Field("POST /api/users", "password", new("password")),
        Field("POST /api/users", "role", new("role")),
        Field("POST /api/users", "display_name", new("display_name"), lambda body: body["display_name"]),
        Field("POST /api/users", "agent_id", new("agent_id"), lambda body: body["agent_id"]),
        Field("POST /api/users", "language", new("language"), lambda body: body["language"]),
        Field(f"PATCH {one}", "display_name", lambda value: {"display_name": value}, lambda body: body["display_name"]),
        Field(f"PATCH {one}", "role", lambda value: {"role": value}),
        Field(f"POST {one}/password", "password", lambda value: {"password": value}),
        Field("POST /api/auth/session", "username", lambda value: {"username": value, "password": PASSWORD}),
        Field("POST /api/auth/session", "password", lambda value: {"username": "seed", "password": value}),
    ]


def _ticket_fields(seeds: Seeds) -> list[Field]:
    one = f"/api/tickets/{seeds.ticket}"
    return [
        Field(f"POST {one}/comments", "body", lambda value: {"body": value}, lambda body: body["body"]),
        Field(f"PATCH {one}", "assignee", lambda value: {"assignee": value}, lambda body: body["assignee"]),
        Field(f"PATCH {one}", "status", lambda value: {"status": value}),
    ]


def _ivr_fields(_seeds: Seeds) -> list[Field]:
    def flow(node: str = "start", prompt: str = "welcome", kind: str = "hangup") -> dict[str, Any]:
        return {"start": node, "nodes": {node: {"type": kind, "prompts": [prompt]}}}

    return [
        Field("POST /api/ivr/flows/validate", "node", lambda value: flow(node=value)),
        Field("POST /api/ivr/flows/validate", "prompt", lambda value: flow(prompt=value)),
        Field("POST /api/ivr/flows/validate", "type", lambda value: flow(kind=value)),
        Field("POST /api/ivr/simulate", "number", lambda value: {"number": value}),
        Field("POST /api/ivr/simulate", "caller", lambda value: {"number": "5551000", "caller": value}),
        Field("POST /api/ivr/simulate", "at", lambda value: {"number": "5551000", "at": value}),
        Field("POST /api/ivr/simulate", "keys", lambda value: {"number": "5551000", "keys": value}),
        Field("PUT /api/ivr/services/5551000/override", "reason",
              lambda value: {"state": "closed", "until": "2030-01-01T00:00:00Z", "reason": value}),
        Field("PUT /api/ivr/services/5551000/override", "until",
              lambda value: {"state": "closed", "until": value}),
        Field("PUT /api/ivr/services/5552000", "name", lambda value: {"number": "5552000", "name": value}),
    ]


def _acd_fields(_seeds: Seeds) -> list[Field]:
    def agent(**values: str) -> dict[str, Any]:
        return {"id": "mallory", "name": "Mallory", **values}

    def config(**values: str) -> dict[str, Any]:
        return {"agents": [agent(**values)], "queues": [{"name": "support"}, {"name": "billing"}]}

    return [
        Field("PUT /api/acd/agents/mallory", "name", lambda value: agent(name=value), lambda body: body["name"]),
        Field("PUT /api/acd/agents/mallory", "team", lambda value: agent(team=value), lambda body: body["team"]),
        Field("PUT /api/acd/agents/mallory", "endpoint", lambda value: agent(endpoint=value)),
        Field("PUT /api/acd/agents/mallory", "id", lambda value: agent(id=value)),
        Field("PUT /api/acd/queues/support", "label", lambda value: {"name": "support", "label": value},
              lambda body: body["label"]),
        Field("PUT /api/acd/queues/support", "overflow", lambda value: {"name": "support", "overflow": value}),
        Field("PUT /api/acd/config", "agent name", lambda value: config(name=value)),
        Field("PUT /api/acd/config", "agent team", lambda value: config(team=value)),
    ]


def _other_fields(_seeds: Seeds) -> list[Field]:
    return [
        Field("POST /api/blocked-numbers", "number", lambda value: {"number": value}),
        Field("POST /api/blocked-numbers", "reason", lambda value: {"number": "+33699999999", "reason": value}),
        Field("POST /api/blocked-numbers", "expires_at", lambda value: {"number": "+33699999998", "expires_at": value}),
        Field("POST /api/prompts/en/welcome/speech", "text", lambda value: {"text": value}),
        Field("POST /api/prompts/en/welcome/speech", "note", lambda value: {"text": "Hello", "note": value}),
        Field("POST /api/simulator/calls", "number", lambda value: {"number": value, "caller_id": "0612345678"}),
        Field("POST /api/simulator/calls", "caller_id", lambda value: {"number": "5551000", "caller_id": value}),
        Field("POST /api/simulator/calls/0a1b2c3d4e5f/dtmf", "digits", lambda value: {"digits": value}),
    ]


@pytest.mark.parametrize("fields_of", [_contact_fields, _user_fields, _ticket_fields, _ivr_fields, _acd_fields,
                                       _other_fields])
async def test_hostile_text_is_refused_clearly_or_stored_verbatim(
    app: CtiApp, http: Http, database: Database, fields_of: Callable[[Seeds], list[Field]]
) -> None:
    seeds = await _seeds(app, http)
    fields = fields_of(seeds)
    accepted = await _hammer(http, fields)
    if any(field.echo is not None for field in fields):
        assert accepted > 0  # the free-text fields do take the SQL-looking strings: stored, not executed
    await _tables_intact(database, http)


async def test_a_refused_hostile_body_is_still_in_the_audit_log(app: CtiApp, http: Http) -> None:
    """A raw NUL byte in a text body (not JSON-escaped): PostgreSQL stores no NUL, so the audit entry keeps
    it escaped rather than losing the whole entry."""
    raw = b"agents: [{id: a\x00b, name: \"'; DROP TABLE audit_log; --\"}]\nqueues: []\n"
    async with http.session.put("/api/acd/config", data=raw, headers={
            "Authorization": f"Bearer {TOKEN}", "Content-Type": "text/plain"}) as response:
        assert response.status == 422, await response.text()
    status, audit = await http.send("GET /api/audit?path_prefix=/api/acd/config")
    assert status == 200
    [entry] = [entry for entry in audit["entries"] if entry["status"] == 422]
    assert "a\\u0000b, name: \"'; DROP TABLE audit_log; --\"" in entry["detail"]


async def test_stored_text_reads_back_verbatim(app: CtiApp, http: Http) -> None:
    """What a success echoed is what a later read finds (not a copy of the request)."""
    seeds = await _seeds(app, http)
    for kind in ("sql-quote", "sql-dquote", "astral", "markup", "rtl-override"):
        value = ATTACKS[kind]
        status, created = await http.send("POST /api/contacts", {"name": value, "numbers": [seeds.number()]})
        assert status == 201, (kind, created)
        status, read = await http.send(f"GET /api/contacts/{created['id']}")
        assert (status, read["name"]) == (200, value), kind
        status, found = await http.send("GET " + str(URL("/api/contacts").with_query(q=value)))
        assert status == 200 and created["id"] in [contact["id"] for contact in found["contacts"]], kind
        assert (await http.send(f"POST /api/tickets/{seeds.ticket}/comments", {"body": value}))[0] == 201
    status, ticket = await http.send(f"GET /api/tickets/{seeds.ticket}")
    bodies = [event["body"] for event in ticket["history"]]
    assert all(ATTACKS[kind] in bodies for kind in ("sql-quote", "astral", "markup")), bodies


async def test_hostile_csv_imports(app: CtiApp, http: Http, database: Database) -> None:
    """Every cell of a contacts import, and bytes that are not UTF-8 at all: a report of bad rows or an import."""
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "text/csv"}
    for column in ("name", "numbers", "email", "company", "contract_level", "vip", "language"):
        for kind, value in ATTACKS.items():
            row = {"name": "Csv", "numbers": f"+3362{len(kind):07d}", "email": "", "company": "", "contract_level": "",
                   "vip": "no", "language": "fr", column: value.replace('"', '""')}
            data = "name,numbers,email,company,contract_level,vip,language\n" + ",".join(
                f'"{cell}"' for cell in row.values()) + "\n"
            async with http.session.post("/api/contacts/import", data=data.encode("utf-8", "surrogatepass"),
                                         headers=headers) as response:
                _clear_answer(f"import {column}={kind}", response.status, await _json_or_bytes(response))
    await _tables_intact(database, http)


async def test_hostile_upload_fields(app: CtiApp, http: Http, database: Database) -> None:
    """The text fields of a prompt upload (a multipart form) and its file name."""
    audio = (app.settings.paths.prompts_dir / "en" / "welcome.wav").read_bytes()
    for field in ("note", "at", "filename"):
        for kind, value in ATTACKS.items():
            if field == "filename" and kind in ("nul", "line-break", "trailing-newline"):
                continue  # the client itself refuses a header with control characters (and so would a server)
            form = aiohttp.FormData()
            name = value if field == "filename" else "hello.wav"
            form.add_field("file", io.BytesIO(audio), filename=name.encode("utf-8", "replace").decode(),
                           content_type="audio/wav")
            if field != "filename":
                form.add_field(field, value.encode("utf-8", "replace").decode())
            async with http.session.post("/api/prompts/en/welcome/versions", data=form,
                                         headers={"Authorization": f"Bearer {TOKEN}"}) as response:
                _clear_answer(f"upload {field}={kind}", response.status, await _json_or_bytes(response))
    await _tables_intact(database, http)


async def test_deeply_nested_bodies_and_malformed_forms(app: CtiApp, http: Http) -> None:
    """A parser's recursion limit or a part header over 8 KiB is the client's fault: 4xx, not 500."""
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    nested = ("[" * 20_000 + "]" * 20_000).encode()
    for route in ("POST /api/contacts", "POST /api/ivr/flows/validate", "PUT /api/acd/config",
                  "POST /api/auth/session"):
        method, path = route.split(" ")
        async with http.session.request(method, path, data=nested, headers=headers) as response:
            body = await _json_or_bytes(response)
        _clear_answer(f"{route} nested 20000 deep", response.status, body)
        assert response.status in (400, 422), (route, response.status)
    form = aiohttp.FormData()
    form.add_field("file", io.BytesIO(b"name,numbers\n"), filename="x" * 9000 + ".csv", content_type="text/csv")
    async with http.session.post("/api/contacts/import", data=form,
                                 headers={"Authorization": f"Bearer {TOKEN}"}) as response:
        body = await _json_or_bytes(response)
    assert (response.status, body["error"]) == (400, "http.body_invalid"), body


async def _json_or_bytes(response: aiohttp.ClientResponse) -> Any:
    raw = await response.read()
    return json.loads(raw) if response.content_type == "application/json" else raw


async def test_hostile_login_form_fields(app: CtiApp, http: Http, database: Database) -> None:
    """The browser login reads a form, not JSON: a refused login (401, the form again), never a 500."""
    await _seeds(app, http)
    for name in ("username", "password", "next"):
        for kind, value in ATTACKS.items():
            fields = {"username": "seed", "password": "wrong password", "next": "/agent", name: value}
            form = "&".join(f"{key}={quote(text.encode('utf-8', 'surrogatepass'), safe='')}"
                            for key, text in fields.items())
            async with http.session.post("/login", data=form.encode(), allow_redirects=False, headers={
                    "Content-Type": "application/x-www-form-urlencoded"}) as response:
                page = await response.text(errors="replace")
            assert response.status == 401, f"POST /login {name}={kind}: {response.status} {page[:200]}"
            assert "Wrong username or password." in page
    await _tables_intact(database, http)


# --- query parameters ------------------------------------------------------------------------------------


QUERIES = {
    "/api/reports/calls": ("from", "to", "group", "format"),
    "/api/tickets": ("status", "source", "queue", "assignee", "caller_number", "search", "created_from", "limit",
                     "call_id"),
    "/api/contacts": ("q", "number", "limit", "offset"),
    "/api/audit": ("limit",),
    "/api/ivr/services/5551000/hours/status": ("at",),
    "/api/acd/live/decisions": ("limit",),
}


async def test_hostile_query_parameters(app: CtiApp, http: Http, database: Database) -> None:
    """Sent percent-encoded byte for byte, so a lone surrogate arrives as invalid UTF-8. A request line is at
    most 8 KiB (aiohttp answers a longer one 400 before any handler), so "very long" is 4000 characters here."""
    attacks = {**ATTACKS, "very-long": "A" * 4000}
    for path, names in QUERIES.items():
        for name in names:
            for kind, value in attacks.items():
                encoded = quote(value.encode("utf-8", "surrogatepass"), safe="")
                status, body = await http.send(f"GET {path}", raw_path=f"{path}?{name}={encoded}")
                _clear_answer(f"GET {path}?{name}={kind}", status, body)
    status, _body = await http.send("GET /api/tickets", raw_path="/api/tickets?search=" + "A" * 9000)
    assert status == 400  # refused by the HTTP parser itself, not a crash
    await _tables_intact(database, http)


PATH_ROUTES = [
    "GET /api/acd/agents/{}", "DELETE /api/acd/agents/{}", "GET /api/acd/queues/{}", "DELETE /api/acd/queues/{}",
    "GET /api/ivr/services/{}", "GET /api/ivr/services/{}/hours/status", "DELETE /api/ivr/services/{}/override",
    "GET /api/users/{}", "DELETE /api/users/{}", "DELETE /api/simulator/calls/{}", "GET /api/prompts/en/{}",
    "GET /api/prompts/{}/welcome", "POST /api/acd/agents/{}/pause", "GET /api/acd/live/calls/{}/explain",
    "GET /api/contacts/{}", "GET /api/tickets/{}",
]


async def test_hostile_path_parameters(app: CtiApp, http: Http, database: Database) -> None:
    """Free-form names and ids in paths; the router's own 404 (text) is a fine answer to a path it does not
    know."""
    attacks = {**ATTACKS, "very-long": "A" * 4000, "superscript-digit": "\u00b2", "arabic-digit": "\u0661"}
    for route in PATH_ROUTES:
        method, template = route.split(" ")
        for kind, value in attacks.items():
            path = template.format(quote(value.encode("utf-8", "surrogatepass"), safe=""))
            status, body = await http.send(f"{method} {path}", {} if method == "POST" else None, raw_path=path)
            where = f"{method} {template.format(kind)}"
            if isinstance(body, bytes):
                assert status in (404, 405), f"{where}: {status} {body!r:.200}"
            else:
                _clear_answer(where, status, body)
    await _tables_intact(database, http)


# --- names that become paths -----------------------------------------------------------------------------


STATIC_ESCAPES = [
    "/static/../../etc/passwd", "/static/..%2f..%2f..%2fetc%2fpasswd", "/static/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/static/%252e%252e%252f%252e%252e%252fetc%252fpasswd", "/static/..%5c..%5c..%5cetc%5cpasswd",
    "/static//etc/passwd", "/static/%2fetc%2fpasswd", "/static/agents/../../../../../etc/passwd",
    "/static/agents/..%2f..%2f..%2f..%2f..%2fetc%2fpasswd", "/static/cti.css%00.png", "/static/%00",
    "/static/..", "/static/.%2e/.%2e/.%2e/etc/passwd",
]


async def test_static_files_never_leave_their_folders(app: CtiApp) -> None:
    """Sent on a raw connection, so no client normalises the ``..`` away; anonymous, as a browser would."""
    for path in STATIC_ESCAPES:
        status, body = await _raw_get(app.http_port, path)
        assert status in (400, 403, 404), f"{path}: {status}"
        assert b"root:" not in body, path
    status, body = await _raw_get(app.http_port, "/static/cti.css")
    assert status == 200 and body  # the folder itself is served


async def _raw_get(port: int, path: str) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


PROMPT_NAMES = ["..%2f..%2fetc%2fpasswd", "%2e%2e", "..", "welcome%00", "welcome%0a", "WELCOME", "welcome.wav",
                "%2fetc%2fpasswd", "a" * 70, "welcome%0d%0aX"]


async def test_prompt_names_and_languages_cannot_name_another_file(app: CtiApp, http: Http, tmp_path: Path) -> None:
    media = app.settings.paths.media_dir
    before = _files(tmp_path)
    for name in PROMPT_NAMES:
        for template in ("/api/prompts/en/{}/speech", "/api/prompts/{}/welcome/speech"):
            path = template.format(name)
            status, body = await http.send(f"POST {path}", {"text": "hello"}, raw_path=path)
            assert status in (400, 404, 405), f"POST {path}: {status} {body!r:.200}"
        for template in ("/api/prompts/en/{}/audio", "/api/prompts/en/{}", "/api/prompts/{}/welcome/audio"):
            path = template.format(name)
            status, body = await http.send(f"GET {path}", raw_path=path)
            assert status in (400, 404), f"GET {path}: {status} {body!r:.200}"
    created = sorted(_files(tmp_path) - before)
    assert not [path for path in created if not path.startswith(str(media))], created
    assert not [path for path in created if "\n" in path or "\x00" in path], created


def _files(folder: Path) -> set[str]:
    return {str(path) for path in folder.rglob("*")}


async def test_attachments_never_leave_the_media_folder(app: CtiApp, http: Http, database: Database) -> None:
    """Even a stored path that escapes the folder (a tampered row) is answered like a missing one."""
    ticket = await app.tickets.create(NewTicket(subject="voicemail", source="voicemail"))
    outside = app.settings.paths.media_dir.parent / "secret.txt"
    outside.write_text("root:x:0:0")
    async with database.session() as session:
        rows = [Attachment(ticket_id=ticket.id, path=path) for path in
                ("../secret.txt", str(outside), "recordings/../../secret.txt", "%2e%2e/secret.txt")]
        session.add_all(rows)
        await session.flush()
        ids = [row.id for row in rows]
    for attachment_id in ids:
        status, body = await http.send(f"GET /api/tickets/{ticket.id}/attachments/{attachment_id}")
        assert (status, body["error"]) == (404, "tickets.attachment_not_found"), body
    for raw in ("..%2f..%2fsecret.txt", "1%2f..%2f..", "%2e%2e", "1%00"):
        path = f"/api/tickets/{ticket.id}/attachments/{raw}"
        status, body = await http.send(f"GET {path}", raw_path=path)
        assert status == 404 and b"root:" not in (body if isinstance(body, bytes) else b""), path


# --- values that reach Asterisk --------------------------------------------------------------------------


async def test_a_trailing_line_break_never_reaches_asterisk(app: CtiApp, http: Http, ami_peer: AmiPeer) -> None:
    """``$`` in a Python regex also matches before a final newline: an AMI header would be cut in two."""
    for body in ({"number": "5551000\n", "caller_id": "0612345678"}, {"number": "5551000", "caller_id": "061\n"}):
        status, answer = await http.send("POST /api/simulator/calls", body)
        assert (status, answer["error"]) == (400, "simulator.invalid"), answer
    assert ami_peer.originate_count == 0
    status, answer = await http.send("POST /api/prompts/en/welcome%0A/speech", {"text": "hi"},
                                     raw_path="/api/prompts/en/welcome%0A/speech")
    assert status == 400, answer
    document = {"number": "5553000\n", "name": "x", "flow": {"start": "a", "nodes": {"a": {"type": "hangup"}}}}
    status, answer = await http.send("PUT /api/ivr/services/5553000%0A", document,
                                     raw_path="/api/ivr/services/5553000%0A")
    assert status == 422 and "is not a phone number" in json.dumps(answer), answer
