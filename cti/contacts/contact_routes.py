"""REST API for contacts and companies, and the CSV import.

Agents search and read contacts, and may create one (the screen pop offers it for an unknown caller),
but not make anyone VIP nor choose a contract: those change queue priority, a supervisor's decision.
Supervisors and admins edit, delete, manage companies and import. Numbers are answered in E.164.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing
from dataclasses import asdict
from typing import Any

from aiohttp import web

from cti.contacts import csv_import
from cti.contacts.errors import (
    CompanyExists,
    ContactInvalid,
    ContactNotFound,
    CsvInvalid,
    CsvTooLarge,
    ImportConflict,
    NumberTaken,
)
from cti.contacts.store import CompanyView, ContactStore, ContactView
from cti.contacts.validation import DEFAULT_LEVEL, ContactInput
from cti.errors import CtiError
from cti.http.auth import REQUEST_ROLE, Role, requires
from cti.http.bodies import BodyInvalid, form_parts, json_object
from cti.http.errors import answers

STORE_KEY: web.AppKey[ContactStore] = web.AppKey("contact_store", ContactStore)
EDITORS: tuple[Role, ...] = ("admin", "supervisor")
EVERYONE: tuple[Role, ...] = (*EDITORS, "agent")
CONTACT_FIELDS = ("name", "numbers", "email", "company", "contract_level", "company_vip", "language", "vip")
COMPANY_FIELDS = ("name", "contract_level", "vip")
CSV_TYPES = frozenset({"text/csv", "text/plain", "application/csv"})
MAX_ID = 2**31 - 1  # the columns are 32-bit integers: a larger id can only be unknown


class RoleRefused(CtiError):
    code = "contacts.role_refused"


def add_contact_routes(app: web.Application, store: ContactStore) -> None:
    app[STORE_KEY] = store
    app.router.add_get("/api/contacts", search_contacts)
    app.router.add_post("/api/contacts", create_contact)
    app.router.add_post("/api/contacts/import", import_contacts)
    app.router.add_get(r"/api/contacts/{contact_id:\d+}", get_contact)
    app.router.add_patch(r"/api/contacts/{contact_id:\d+}", patch_contact)
    app.router.add_delete(r"/api/contacts/{contact_id:\d+}", delete_contact)
    app.router.add_get("/api/companies", list_companies)
    app.router.add_post("/api/companies", create_company)
    app.router.add_patch(r"/api/companies/{company_id:\d+}", patch_company)


contact_errors = answers((ContactNotFound, 404), ((NumberTaken, CompanyExists, ImportConflict), 409),
                         (ContactInvalid, 422), (BodyInvalid, 400), (RoleRefused, 403), (CsvTooLarge, 413))


def company_json(company: CompanyView) -> dict[str, Any]:
    return {"id": company.id, "name": company.name, "contract_level": company.contract_level, "vip": company.vip}


def contact_json(contact: ContactView) -> dict[str, Any]:
    return {"id": contact.id, "name": contact.name, "numbers": list(contact.numbers), "email": contact.email,
            "language": contact.language, "vip": contact.vip,
            "company": company_json(contact.company) if contact.company else None,
            "created_at": contact.created_at.isoformat()}


# --- contacts --------------------------------------------------------------------------------------


@requires(*EVERYONE)
@contact_errors
async def search_contacts(request: web.Request) -> web.StreamResponse:
    """``?q=`` part of the name, ``?number=`` any format, ``?limit=`` (50, at most 500), ``?offset=``."""
    query = request.query
    page = await request.app[STORE_KEY].search(query.get("q", ""), query.get("number", ""),
                                               _count(query, "limit", 50, 1), _count(query, "offset", 0, 0))
    return web.json_response({"contacts": [contact_json(contact) for contact in page.contacts], "total": page.total,
                              "limit": page.limit, "offset": page.offset})


@requires(*EVERYONE)
@contact_errors
async def get_contact(request: web.Request) -> web.StreamResponse:
    return web.json_response(contact_json(await request.app[STORE_KEY].get(_path_id(request, "contact_id"))))


@requires(*EVERYONE)
@contact_errors
async def create_contact(request: web.Request) -> web.StreamResponse:
    """JSON ``{"name", "numbers": [...], "email"?, "company"?, "language"?}``, and for supervisors and
    admins ``"vip"?``, ``"contract_level"?``, ``"company_vip"?`` (for a company created with it); 201."""
    body = await json_object(request, allowed=CONTACT_FIELDS)
    _refuse_privileges(request, body)
    contact = await request.app[STORE_KEY].create(contact_input(body))
    return web.json_response(contact_json(contact), status=201)


@requires(*EDITORS)
@contact_errors
async def patch_contact(request: web.Request) -> web.StreamResponse:
    """The fields given replace the stored ones; ``numbers`` replaces all of them at once."""
    store, contact_id = request.app[STORE_KEY], _path_id(request, "contact_id")
    body = await json_object(request, allowed=CONTACT_FIELDS)
    current = await store.get(contact_id)
    stored = {"name": current.name, "numbers": list(current.numbers), "email": current.email,
              "company": current.company.name if current.company else None, "language": current.language,
              "vip": current.vip}
    return web.json_response(contact_json(await store.update(contact_id, contact_input({**stored, **body}))))


@requires(*EDITORS)
@contact_errors
async def delete_contact(request: web.Request) -> web.StreamResponse:
    await request.app[STORE_KEY].delete(_path_id(request, "contact_id"))
    return web.Response(status=204)


@requires(*EDITORS)
@contact_errors
async def import_contacts(request: web.Request) -> web.StreamResponse:
    """The CSV as the body (text/csv) or as the multipart field ``file``; ``?dry_run=1`` only checks.
    Any bad row: 400 with every bad row's line and reason, and nothing imported."""
    data = await read_csv_body(request)
    dry_run = request.query.get("dry_run", "").lower() in ("1", "true", "yes")
    try:
        report = await csv_import.import_csv(request.app[STORE_KEY], data, dry_run=dry_run)
    except CsvInvalid as exc:
        return web.json_response({"error": exc.code, "message": str(exc), "created": 0, "updated": 0,
                                  "errors": [asdict(error) for error in exc.errors]}, status=400)
    return web.json_response({**asdict(report), "errors": []})


# --- companies -------------------------------------------------------------------------------------


@requires(*EDITORS)
@contact_errors
async def list_companies(request: web.Request) -> web.StreamResponse:
    companies = await request.app[STORE_KEY].list_companies()
    return web.json_response({"companies": [{**company_json(company), "contacts": company.contacts}
                                            for company in companies]})


@requires(*EDITORS)
@contact_errors
async def create_company(request: web.Request) -> web.StreamResponse:
    """JSON ``{"name", "contract_level"? (standard), "vip"?}``; 201, or 409 if the name is taken."""
    body = await json_object(request, allowed=COMPANY_FIELDS)
    company = await request.app[STORE_KEY].create_company(
        _text(body, "name") or "", _text(body, "contract_level") or DEFAULT_LEVEL, _flag(body, "vip") or False)
    return web.json_response(company_json(company), status=201)


@requires(*EDITORS)
@contact_errors
async def patch_company(request: web.Request) -> web.StreamResponse:
    body = await json_object(request, allowed=COMPANY_FIELDS)
    company = await request.app[STORE_KEY].update_company(
        _path_id(request, "company_id"), name=_text(body, "name"), contract_level=_text(body, "contract_level"),
        vip=_flag(body, "vip"))
    return web.json_response(company_json(company))


# --- reading requests ------------------------------------------------------------------------------


def contact_input(body: dict[str, Any]) -> ContactInput:
    numbers = body.get("numbers", [])
    if not isinstance(numbers, list) or not all(isinstance(number, str) for number in numbers):
        raise BodyInvalid("numbers must be a list of phone numbers (strings)")
    return ContactInput(name=_text(body, "name") or "", numbers=numbers, email=_text(body, "email") or "",
                        company=_text(body, "company"), contract_level=_text(body, "contract_level"),
                        company_vip=_flag(body, "company_vip"), language=_text(body, "language"),
                        vip=_flag(body, "vip") or False)


def _refuse_privileges(request: web.Request, body: dict[str, Any]) -> None:
    """Agents may not grant queue priority (VIP, a contract level) through a contact they create."""
    granted = [key for key in ("vip", "contract_level", "company_vip") if body.get(key) not in (None, False, "")]
    if request[REQUEST_ROLE] == "agent" and granted:
        raise RoleRefused(f"agents may not set {', '.join(granted)}: ask a supervisor")


def _text(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise BodyInvalid(f"{key} must be a string")
    return value


def _flag(body: dict[str, Any], key: str) -> bool | None:
    value = body.get(key)
    if value is not None and not isinstance(value, bool):
        raise BodyInvalid(f"{key} must be true or false")
    return value


def _count(query: Mapping[str, str], key: str, default: int, lowest: int) -> int:
    raw = query.get(key, "")
    if raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9 or int(raw) < lowest:
        raise BodyInvalid(f"{key} must be a whole number of at least {lowest}")
    return int(raw)


def _path_id(request: web.Request, key: str) -> int:
    raw = request.match_info[key]
    if not raw.isascii() or len(raw) > 10 or int(raw) > MAX_ID:
        kind = "contact" if key == "contact_id" else "company"
        raise ContactNotFound(f"no {kind} {raw[:20]}")
    return int(raw)


async def read_csv_body(request: web.Request) -> bytes:
    """The CSV bytes, refused past csv_import.MAX_CSV_BYTES without reading the rest."""
    limit = csv_import.MAX_CSV_BYTES
    multipart = request.content_type.startswith("multipart/")
    if (request.content_length or 0) > limit + (65536 if multipart else 0):  # room for the multipart framing
        raise csv_import.too_large()
    if multipart:
        return await _limited(_file_field(request), limit)
    if request.content_type not in CSV_TYPES:
        raise BodyInvalid("send the CSV as the body with Content-Type: text/csv, or as the multipart field 'file'")
    return await _limited(request.content.iter_chunked(65536), limit)


async def _file_field(request: web.Request) -> AsyncIterator[bytes]:
    async with aclosing(form_parts(request)) as parts:
        async for part in parts:
            if part.name == "file":
                while chunk := await part.read_chunk(65536):
                    yield chunk
                return
            await part.release()
    raise BodyInvalid("the multipart body has no field named 'file'")


async def _limited(chunks: AsyncIterator[bytes], limit: int) -> bytes:
    data = bytearray()
    async for chunk in chunks:
        data += chunk
        if len(data) > limit:
            raise csv_import.too_large()
    return bytes(data)
