"""Contacts and companies API (SQLite and PostgreSQL): the roles of every route, what agents may and may not
do, refusals with their codes, partial updates, paging, and the CSV import as a body or a multipart file."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import FormData, web
from aiohttp.test_utils import TestClient, TestServer

from cti.contacts import csv_import
from cti.contacts import http as contacts_http
from cti.contacts.directory import CallerDirectory
from cti.db import Database
from cti.http.app import make_web_app
from cti.http.auth import declared_roles
from cti.settings import SecuritySettings
from tests.support.ivr import MONDAY_10

ADMIN, SUPERVISOR, AGENT = "a" * 32, "s" * 32, "g" * 32
CLAIRE: dict[str, Any] = {"name": "Claire Martin", "numbers": ["06 12 34 56 78"], "email": "claire@dupont.example",
                          "company": "Dupont SA", "contract_level": "gold", "language": "fr"}
CSV = ("name,numbers,email,company,contract_level,vip,language\n"
       "Claire Martin,06 12 34 56 78,,Dupont SA,gold,no,fr\n"
       "James Whitaker,+44 20 7946 0321|+44 7700 900123,,Northwind Ltd,platinum,yes,en\n")
EVERYONE = {"admin", "supervisor", "agent"}
EDITORS = {"admin", "supervisor"}
ROUTES = [
    ("GET", "/api/contacts", EVERYONE),
    ("POST", "/api/contacts", EVERYONE),
    ("GET", "/api/contacts/1", EVERYONE),
    ("PATCH", "/api/contacts/1", EDITORS),
    ("DELETE", "/api/contacts/1", EDITORS),
    ("POST", "/api/contacts/import", EDITORS),
    ("GET", "/api/companies", EDITORS),
    ("POST", "/api/companies", EDITORS),
    ("PATCH", "/api/companies/1", EDITORS),
]
Client = TestClient[web.Request, web.Application]


async def _status() -> dict[str, Any]:
    return {"healthy": True}


@pytest.fixture
async def client(database: Database) -> AsyncIterator[Client]:
    app = make_web_app(SecuritySettings(api_tokens={ADMIN: "admin", SUPERVISOR: "supervisor", AGENT: "agent"}),
                       _status)
    contacts_http.add_routes(app, CallerDirectory(database, "FR"), contract_levels=("standard", "gold", "platinum"))
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def call(client: Client, method: str, path: str, token: str = SUPERVISOR, **kwargs: Any) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
    response = await client.request(method, path, headers=headers, **kwargs)
    body = await response.json() if response.content_type == "application/json" else await response.text()
    return response.status, body


async def test_every_route_declares_the_roles_it_admits(client: Client) -> None:
    expected = {(method, path): roles for method, path, roles in ROUTES}
    seen = set()
    for route in client.app.router.routes():
        path = re.sub(r"\{[^}]+\}", "1", route.resource.canonical if route.resource else "")
        if path.startswith(("/api/contacts", "/api/companies")) and route.method != "HEAD":
            assert declared_roles(route.handler) == expected[(route.method, path)], route
            seen.add((route.method, path))
    assert seen == set(expected)


@pytest.mark.parametrize(("method", "path", "roles"), ROUTES)
async def test_roles_on_every_route(client: Client, method: str, path: str, roles: set[str]) -> None:
    assert (await client.request(method, path)).status == 401
    for token, role in ((ADMIN, "admin"), (SUPERVISOR, "supervisor"), (AGENT, "agent")):
        status, _ = await call(client, method, path, token)
        assert (status == 403) == (role not in roles), (role, status)


async def test_an_agent_searches_and_creates_but_cannot_edit_delete_or_import(client: Client) -> None:
    status, created = await call(client, "POST", "/api/contacts", AGENT,
                                 json={"name": "New Caller", "numbers": ["+33 6 39 98 00 01"], "company": "Acme"})
    assert status == 201 and created["numbers"] == ["+33639980001"]
    assert created["company"]["contract_level"] == "standard"
    status, found = await call(client, "GET", "/api/contacts?number=0639980001", AGENT)
    assert status == 200 and [contact["id"] for contact in found["contacts"]] == [created["id"]]
    assert (await call(client, "GET", f"/api/contacts/{created['id']}", AGENT))[0] == 200
    assert (await call(client, "PATCH", f"/api/contacts/{created['id']}", AGENT, json={"vip": True}))[0] == 403
    assert (await call(client, "DELETE", f"/api/contacts/{created['id']}", AGENT))[0] == 403
    assert (await call(client, "POST", "/api/contacts/import", AGENT, data=CSV,
                       headers={"Content-Type": "text/csv"}))[0] == 403


@pytest.mark.parametrize("grant", [{"vip": True}, {"contract_level": "platinum"}, {"company_vip": True}])
async def test_an_agent_cannot_grant_priority_through_a_new_contact(client: Client, grant: dict[str, Any]) -> None:
    status, body = await call(client, "POST", "/api/contacts", AGENT, json={**CLAIRE, "contract_level": None, **grant})
    assert status == 403 and body["error"] == "contacts.role_refused" and "ask a supervisor" in body["message"]
    status, _ = await call(client, "POST", "/api/contacts", SUPERVISOR, json={**CLAIRE, **grant})
    assert status == 201


async def test_create_read_patch_delete(client: Client, database: Database) -> None:
    status, claire = await call(client, "POST", "/api/contacts", json=CLAIRE)
    assert status == 201
    assert {key: claire[key] for key in ("name", "numbers", "email", "language", "vip")} == {
        "name": "Claire Martin", "numbers": ["+33612345678"], "email": "claire@dupont.example", "language": "fr",
        "vip": False}
    assert claire["company"] == {"id": claire["company"]["id"], "name": "Dupont SA", "contract_level": "gold",
                                 "vip": False}
    path = f"/api/contacts/{claire['id']}"
    status, patched = await call(client, "PATCH", path, json={"email": "c.martin@dupont.example", "vip": True})
    assert status == 200 and (patched["email"], patched["vip"], patched["numbers"]) == (
        "c.martin@dupont.example", True, ["+33612345678"])
    assert patched["company"]["name"] == "Dupont SA"
    status, patched = await call(client, "PATCH", path, json={"numbers": ["+44 7700 900123", "0612345679"],
                                                              "company": None})
    assert status == 200 and (patched["numbers"], patched["company"]) == (["+447700900123", "+33612345679"], None)
    assert not (await CallerDirectory(database, "FR").lookup("0612345678", MONDAY_10)).known
    assert (await call(client, "GET", path))[1] == patched
    assert (await call(client, "DELETE", path))[0] == 204
    status, body = await call(client, "GET", path)
    assert (status, body["error"]) == (404, "contacts.not_found")
    assert (await call(client, "DELETE", path))[0] == 404
    assert (await call(client, "PATCH", path, json={"vip": False}))[0] == 404
    assert (await call(client, "GET", "/api/contacts/99999999999"))[0] == 404


async def test_refusals_answer_their_codes(client: Client) -> None:
    _, claire = await call(client, "POST", "/api/contacts", json=CLAIRE)
    status, taken = await call(client, "POST", "/api/contacts", json={"name": "Jean", "numbers": ["+33612345678"]})
    assert (status, taken["error"]) == (409, "contacts.number_taken")
    assert taken["message"] == f"+33612345678 already belongs to Claire Martin (contact {claire['id']})"
    status, invalid = await call(client, "POST", "/api/contacts", json={"name": "", "numbers": ["12"], "email": "x"})
    assert (status, invalid["error"], len(invalid["errors"])) == (422, "contacts.invalid", 3)
    for body, message in [({"name": "A", "numbers": "0612345678"}, "numbers must be a list"),
                          ({"name": 5, "numbers": []}, "name must be a string"),
                          ({"name": "A", "numbers": [], "vip": "yes"}, "vip must be true or false"),
                          ({"name": "A", "numbers": [], "phone": "1"}, "unknown field(s): phone")]:
        status, refused = await call(client, "POST", "/api/contacts", json=body)
        assert (status, refused["error"]) == (400, "http.body_invalid") and message in refused["message"]


async def test_search_pages_through_contacts(client: Client) -> None:
    for index in range(5):
        await call(client, "POST", "/api/contacts", json={"name": f"Martin {index}", "numbers": [f"+331990000{index}"]})
    injection = {"name": "O'Brien; DROP TABLE contacts", "numbers": ["+33199000009"]}
    assert (await call(client, "POST", "/api/contacts", json=injection))[0] == 201
    status, page = await call(client, "GET", "/api/contacts?q=MARTIN&limit=2&offset=2", AGENT)
    assert status == 200 and (page["total"], page["limit"], page["offset"]) == (5, 2, 2)
    assert [contact["name"] for contact in page["contacts"]] == ["Martin 2", "Martin 3"]
    _, found = await call(client, "GET", "/api/contacts", params={"q": "'brien; drop"})
    assert [contact["name"] for contact in found["contacts"]] == ["O'Brien; DROP TABLE contacts"]
    assert (await call(client, "GET", "/api/contacts"))[1]["total"] == 6
    for query in ("limit=0", "limit=x", "offset=-1"):
        status, refused = await call(client, "GET", f"/api/contacts?{query}")
        assert (status, refused["error"]) == (400, "http.body_invalid")


async def test_companies_are_listed_created_and_patched(client: Client) -> None:
    await call(client, "POST", "/api/contacts", json=CLAIRE)
    status, acme = await call(client, "POST", "/api/companies", json={"name": "Acme", "vip": True})
    assert status == 201 and (acme["contract_level"], acme["vip"]) == ("standard", True)
    status, exists = await call(client, "POST", "/api/companies", json={"name": "Acme"})
    assert (status, exists["error"]) == (409, "contacts.company_exists")
    status, refused = await call(client, "POST", "/api/companies", json={"name": "B", "contract_level": "diamond"})
    assert (status, refused["error"]) == (422, "contacts.invalid")
    _, listed = await call(client, "GET", "/api/companies")
    assert [(company["name"], company["contacts"]) for company in listed["companies"]] == [
        ("Acme", 0), ("Dupont SA", 1)]
    status, patched = await call(client, "PATCH", f"/api/companies/{acme['id']}", json={"contract_level": "platinum"})
    assert status == 200 and (patched["name"], patched["contract_level"], patched["vip"]) == ("Acme", "platinum", True)
    status, missing = await call(client, "PATCH", "/api/companies/999", json={"vip": False})
    assert (status, missing["error"]) == (404, "contacts.company_not_found")


async def test_import_a_csv_body_then_again_as_a_multipart_file(client: Client, database: Database) -> None:
    status, dry = await call(client, "POST", "/api/contacts/import?dry_run=1", data=CSV.encode("utf-8-sig"),
                             headers={"Content-Type": "text/csv; charset=utf-8"})
    assert status == 200 and (dry["created"], dry["dry_run"], dry["errors"]) == (2, True, [])
    assert (await call(client, "GET", "/api/contacts"))[1]["total"] == 0
    status, done = await call(client, "POST", "/api/contacts/import", data=CSV, headers={"Content-Type": "text/csv"})
    assert status == 200 and (done["created"], done["updated"], done["companies_created"]) == (2, 0, 2)
    profile = await CallerDirectory(database, "FR").lookup("+447700900123", MONDAY_10)
    assert (profile.contact_name, profile.company_name, profile.contract_level, profile.vip) == (
        "James Whitaker", "Northwind Ltd", "platinum", True)
    form = FormData()
    form.add_field("note", "ignored")
    form.add_field("file", CSV.replace("no,fr", "yes,fr").encode(), filename="contacts.csv", content_type="text/csv")
    status, again = await call(client, "POST", "/api/contacts/import", data=form)
    assert status == 200 and (again["created"], again["updated"], again["unchanged"]) == (0, 1, 1)


async def test_an_import_with_bad_rows_answers_400_with_each_line_and_imports_nothing(client: Client) -> None:
    bad = CSV + "No Number,,,,,,\nBad Language,+33639980002,,,,,de\n"
    status, refused = await call(client, "POST", "/api/contacts/import", data=bad, headers={"Content-Type": "text/csv"})
    assert status == 400 and refused["error"] == "contacts.csv_invalid"
    assert (refused["created"], refused["updated"]) == (0, 0)
    assert refused["errors"] == [{"line": 4, "message": "numbers: give at least one phone number"},
                                 {"line": 5, "message": "language: 'de' is not one of en, fr (or empty)"}]
    assert (await call(client, "GET", "/api/contacts"))[1]["total"] == 0


async def test_an_import_refuses_an_oversized_file_or_an_unknown_body(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(csv_import, "MAX_CSV_BYTES", 100)
    status, refused = await call(client, "POST", "/api/contacts/import", data=CSV, headers={"Content-Type": "text/csv"})
    assert (status, refused["error"]) == (413, "contacts.csv_too_large")
    assert "larger than 0.0001 MB" in refused["message"]
    for size in (1, 500):  # within the multipart framing's allowance: read until the limit; past it: refused at once
        form = FormData()
        form.add_field("file", CSV.encode() * size, filename="big.csv", content_type="text/csv")
        status, refused = await call(client, "POST", "/api/contacts/import", data=form)
        assert (status, refused["error"]) == (413, "contacts.csv_too_large")

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: counted as it comes
        yield CSV.encode()

    status, refused = await call(client, "POST", "/api/contacts/import", data=chunked(),
                                 headers={"Content-Type": "text/csv"})
    assert (status, refused["error"]) == (413, "contacts.csv_too_large")
    monkeypatch.undo()
    form = FormData()
    form.add_field("other", CSV.encode(), filename="contacts.csv")
    status, refused = await call(client, "POST", "/api/contacts/import", data=form)
    assert status == 400 and "no field named 'file'" in refused["message"]
    status, refused = await call(client, "POST", "/api/contacts/import", json={"csv": CSV})
    assert status == 400 and "Content-Type: text/csv" in refused["message"]
