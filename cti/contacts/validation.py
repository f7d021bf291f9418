"""The one set of rules for a contact, whether it comes from the API, a CSV row or the CLI.

Numbers are normalised with the same function the caller directory uses on every call
(:func:`cti.contacts.directory.normalise_number`), so what is stored is exactly what a lookup matches.
Every check appends its reason to a list, so one refusal names every field to fix.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from cti.contacts.directory import normalise_number
from cti.contacts.errors import ContactInvalid
from cti.contacts.profile import is_withheld

LANGUAGES = ("en", "fr")
MAX_NAME = 200
MAX_EMAIL = 254
MAX_NUMBERS = 20
DEFAULT_LEVEL = "standard"
E164 = re.compile(r"^\+[1-9]\d{4,14}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
LEVEL = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # PostgreSQL refuses NUL, and none of them belongs in a name


@dataclass(frozen=True)
class ContactInput:
    """A contact as given. ``company`` is found by name and created when missing, with ``contract_level``
    (default standard) and ``company_vip``; for an existing company those two must match it, if given."""

    name: str
    numbers: Sequence[str] = ()
    email: str = ""
    company: str | None = None
    contract_level: str | None = None
    company_vip: bool | None = None
    language: str | None = None
    vip: bool = False


def check_contact(data: ContactInput, region: str, levels: Collection[str] = ()) -> ContactInput:
    """The contact normalised (numbers in E.164, text stripped), or ContactInvalid with every reason."""
    errors: list[str] = []
    name = check_text("name", data.name, MAX_NAME, errors)
    numbers = check_numbers(data.numbers, region, errors)
    email = check_email(data.email, errors)
    company = check_text("company", data.company, MAX_NAME, errors, required=False) if data.company else None
    level = check_level(data.contract_level, levels, errors) if data.contract_level else None
    if company is None and (level is not None or data.company_vip is not None):
        errors.append("contract_level and company_vip describe a company: give its name in company")
    language = check_language(data.language, errors)
    if errors:
        raise ContactInvalid(errors)
    return ContactInput(name, numbers, email, company, level, data.company_vip, language, data.vip)


def check_text(field: str, value: str | None, limit: int, errors: list[str], *, required: bool = True) -> str:
    text = (value or "").strip()
    if required and not text:
        errors.append(f"{field}: must not be empty")
    elif len(text) > limit:
        errors.append(f"{field}: at most {limit} characters (got {len(text)})")
    elif CONTROL.search(text):
        errors.append(f"{field}: control characters (tab, new line, ...) are not allowed")
    return text


def check_numbers(raw: Sequence[str], region: str, errors: list[str]) -> tuple[str, ...]:
    """E.164 numbers in the given order, duplicates (the same number written twice) merged."""
    found: dict[str, None] = {}
    for item in raw:
        number = normalise_number(item, region)
        if is_withheld(item) or not E164.fullmatch(number):
            errors.append(f"numbers: {item.strip()[:40]!r} is not a phone number (write it as +33612345678, "
                          f"or in the national format of {region})")
        else:
            found.setdefault(number)
    if not raw:
        errors.append("numbers: give at least one phone number")
    elif len(found) > MAX_NUMBERS:
        errors.append(f"numbers: at most {MAX_NUMBERS} per contact (got {len(found)})")
    return tuple(found)


def check_email(value: str, errors: list[str]) -> str:
    email = value.strip()
    if email and (len(email) > MAX_EMAIL or not EMAIL.fullmatch(email)):
        errors.append(f"email: {email[:60]!r} is not an e-mail address")
    return email


def check_language(value: str | None, errors: list[str]) -> str | None:
    language = (value or "").strip().lower()
    if language and language not in LANGUAGES:
        errors.append(f"language: {value!r} is not one of {', '.join(LANGUAGES)} (or empty)")
    return language or None


def check_level(value: str, levels: Collection[str], errors: list[str]) -> str:
    """One of ``levels`` (the configured SLA levels) when given, else any short identifier."""
    level = value.strip()
    if levels and level not in levels:
        errors.append(f"contract_level: {level!r} is not one of {', '.join(sorted(levels))}")
    elif not LEVEL.fullmatch(level):
        errors.append(f"contract_level: {level[:40]!r} must be 1 to 32 letters, digits, '-' or '_'")
    return level


def check_company(name: str, level: str, levels: Collection[str]) -> tuple[str, str]:
    """A company's name and contract level, checked, or ContactInvalid."""
    errors: list[str] = []
    clean = check_text("name", name, MAX_NAME, errors), check_level(level, levels, errors)
    if errors:
        raise ContactInvalid(errors)
    return clean
