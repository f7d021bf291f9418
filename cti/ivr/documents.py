"""One YAML document per service number: its name, language, opening hours and flow.

    number: "5551000"
    name: Help desk (English)
    language: en
    hours: {timezone: Europe/Paris, weekly: {monday: ["08:30-18:00"]}, holidays: {country: FR}}
    flow: {start: hours, nodes: {...}}

Import checks every part before writing anything and writes all parts in one transaction, so a
refused document changes nothing; export gives back a document that imports to the same service.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from sqlalchemy import select

from cti.db.models import ServiceNumber
from cti.ivr.errors import DocumentInvalid
from cti.ivr.flow import FlowInvalid, dump_flow
from cti.ivr.schedule import ScheduleError
from cti.ivr.schedule_parse import dump_opening_hours
from cti.ivr.service import IvrService
from cti.ivr.store import write_flow, write_hours
from cti.prompts import LANGUAGES
from cti.safe_text import unstorable_text

NUMBER = re.compile(r"^\+?[0-9]{2,20}$")
KEYS = {"number", "name", "language", "enabled", "hours", "flow"}
MAX_DOCUMENT_BYTES = 256 * 1024


def load_yaml(text: str) -> Any:
    """Safe YAML (no Python objects); a syntax error is reported with its line, text no database can store
    (NUL, unpaired surrogates: ``cti.safe_text``) is refused."""
    if len(text.encode()) > MAX_DOCUMENT_BYTES:
        raise DocumentInvalid([f"document: larger than {MAX_DOCUMENT_BYTES // 1024} KiB"])
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise DocumentInvalid([f"document: not valid YAML ({exc})"]) from None
    except RecursionError:  # the parser recurses once per nesting level
        raise DocumentInvalid(["document: nested too deeply"]) from None
    problem = unstorable_text(document)
    if problem:
        raise DocumentInvalid([f"document: contains {problem}"])
    return document


def dump_yaml(document: dict[str, Any]) -> str:
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


async def import_document(ivr: IvrService, document: Any, author: str) -> ServiceNumber:
    """Creates or updates the service number, its hours and its flow; all or nothing."""
    fields = _check_fields(document)
    hours = flow = None
    errors: list[str] = []
    try:
        hours = ivr.check_hours(document["hours"]) if document.get("hours") is not None else None
    except ScheduleError as exc:
        errors += [f"hours.{reason}" for reason in exc.errors]
    try:
        flow = ivr.check_flow(document["flow"]) if document.get("flow") is not None else None
    except FlowInvalid as exc:
        errors += [f"flow.{reason}" for reason in exc.errors]
    if errors:
        raise DocumentInvalid(errors)
    async with ivr.db.session() as session:
        service = (await session.scalars(select(ServiceNumber).where(ServiceNumber.number == fields["number"]))).first()
        if service is None:
            service = ServiceNumber(number=fields["number"])
            session.add(service)
        service.name, service.language, service.enabled = fields["name"], fields["language"], fields["enabled"]
        await session.flush()
        if hours is not None:
            await write_hours(session, service, dump_opening_hours(hours), author)
        if flow is not None:
            await write_flow(session, service, dump_flow(flow), author)
    return service


def _check_fields(document: Any) -> dict[str, Any]:
    if not isinstance(document, dict):
        raise DocumentInvalid(["document: expected a mapping with number, name, language, hours and flow"])
    errors = [f"{key}: unknown key (expected {', '.join(sorted(KEYS))})" for key in document if key not in KEYS]
    if isinstance(document.get("number"), int):  # YAML reads 0155555555 as an octal number
        errors.append("number: write it in quotes (\"0155555555\"): unquoted, YAML reads it as a number")
    number = str(document.get("number", ""))
    if not NUMBER.fullmatch(number):
        errors.append(f"number: {number!r} is not a phone number (digits, optionally a leading +)")
    name = document.get("name", number)
    if not isinstance(name, str) or not 0 < len(name) <= 120:
        errors.append("name: a text of 1 to 120 characters")
    language = document.get("language", "en")
    if language not in LANGUAGES:
        errors.append(f"language: {language!r} is not one of {', '.join(LANGUAGES)}")
    enabled = document.get("enabled", True)
    if not isinstance(enabled, bool):
        errors.append("enabled: true or false")
    if errors:
        raise DocumentInvalid(errors)
    return {"number": number, "name": name, "language": language, "enabled": enabled}


async def export_document(ivr: IvrService, number: str) -> dict[str, Any]:
    stored = await ivr.stored(number)
    document: dict[str, Any] = {"number": stored.service.number, "name": stored.service.name,
                                "language": stored.service.language, "enabled": stored.service.enabled}
    if stored.hours is not None:
        document["hours"] = stored.hours
    if stored.flow is not None:
        document["flow"] = stored.flow
    return document
