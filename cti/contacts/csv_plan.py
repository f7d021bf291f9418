"""What a checked CSV file does to the stored contacts, worked out in batches, then written in batches.

Matching is decided against the contacts as stored before the import: a row updates the contact that
owns one of its numbers. So after the numbers of the contacts being updated are deleted, no number of
the file belongs to anyone else, and every insert passes the unique constraint.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from sqlalchemy import Table, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from cti.contacts.errors import CsvInvalid, RowError
from cti.contacts.models import Company, Contact, ContactNumber
from cti.contacts.store import CHUNK, numbers_of
from cti.contacts.validation import DEFAULT_LEVEL, ContactInput

T = TypeVar("T")
# Core tables, not the ORM classes: an ORM bulk INSERT ... RETURNING of 50,000 rows takes minutes (it
# splices every batch's results together again and again), a Core one seconds.
CONTACTS, COMPANIES = cast(Table, Contact.__table__), cast(Table, Company.__table__)


@dataclass(frozen=True)
class CsvRow:
    """A row checked and normalised; ``line`` is where it starts in the file (the header is line 1)."""

    line: int
    contact: ContactInput


@dataclass(frozen=True)
class ImportReport:
    """What an import did, or would do when ``dry_run``; ``updated`` counts contacts that really change."""

    created: int
    updated: int
    unchanged: int
    companies_created: int
    companies_updated: int
    dry_run: bool


@dataclass(frozen=True)
class Stored:
    """A stored contact, in the terms of a CSV row, to tell whether a row changes it."""

    id: int
    name: str
    email: str
    language: str | None
    vip: bool
    company: str | None
    numbers: tuple[str, ...]


@dataclass
class Plan:
    new: list[CsvRow] = field(default_factory=list)
    changed: list[tuple[int, CsvRow]] = field(default_factory=list)
    unchanged: int = 0
    company_ids: dict[str, int] = field(default_factory=dict)  # stored companies the file names
    new_companies: dict[str, str] = field(default_factory=dict)  # name -> contract level
    company_levels: dict[int, str] = field(default_factory=dict)  # stored company id -> new contract level

    def report(self, dry_run: bool) -> ImportReport:
        return ImportReport(len(self.new), len(self.changed), self.unchanged, len(self.new_companies),
                            len(self.company_levels), dry_run)


async def plan_import(session: AsyncSession, rows: list[CsvRow]) -> Plan:
    """CsvInvalid when a row would merge two stored contacts, or two rows would update the same one."""
    owners = await _owners(session, [number for row in rows for number in row.contact.numbers])
    stored = await _stored(session, sorted(set(owners.values())))
    matches, errors = match_rows(rows, owners, stored)
    if errors:
        raise CsvInvalid(errors)
    plan = Plan()
    for row, contact in matches:
        if contact is None:
            plan.new.append(row)
        elif differs(row.contact, contact):
            plan.changed.append((contact.id, row))
        else:
            plan.unchanged += 1
    await _plan_companies(session, plan, rows)
    return plan


def match_rows(rows: list[CsvRow], owners: dict[str, int], stored: dict[int, Stored]
               ) -> tuple[list[tuple[CsvRow, Stored | None]], list[RowError]]:
    matches: list[tuple[CsvRow, Stored | None]] = []
    errors: list[RowError] = []
    claimed: dict[int, int] = {}  # contact id -> the line that updates it
    for row in rows:
        ids = sorted({owners[number] for number in row.contact.numbers if number in owners})
        if len(ids) > 1:
            names = ", ".join(f"{stored[i].name} (contact {i})" for i in ids)
            errors.append(RowError(row.line, f"its numbers belong to different contacts: {names}"))
            continue
        if ids and claimed.setdefault(ids[0], row.line) != row.line:
            errors.append(RowError(row.line, f"updates the same contact as line {claimed[ids[0]]}: "
                                             f"{stored[ids[0]].name} (contact {ids[0]})"))
            continue
        matches.append((row, stored[ids[0]] if ids else None))
    return matches, errors


def differs(row: ContactInput, contact: Stored) -> bool:
    return (row.name, row.email, row.language, row.vip, row.company, tuple(row.numbers)) != (
        contact.name, contact.email, contact.language, contact.vip, contact.company, contact.numbers)


async def _plan_companies(session: AsyncSession, plan: Plan, rows: list[CsvRow]) -> None:
    """Companies the file names are created when missing; a level in the file replaces the stored one."""
    names = {row.contact.company for row in rows if row.contact.company}
    levels = {row.contact.company: row.contact.contract_level for row in rows
              if row.contact.company and row.contact.contract_level}
    stored = await _companies(session, sorted(names))
    plan.company_ids = {name: company_id for name, (company_id, _) in stored.items()}
    plan.new_companies = {name: levels.get(name, DEFAULT_LEVEL) for name in sorted(names - set(stored))}
    plan.company_levels = {stored[name][0]: level for name, level in levels.items()
                           if name in stored and stored[name][1] != level}


async def apply_plan(session: AsyncSession, plan: Plan) -> None:
    company_ids = {**plan.company_ids, **await _insert_companies(session, plan.new_companies)}
    if plan.company_levels:
        await session.execute(update(Company), [{"id": company_id, "contract_level": level}
                                                for company_id, level in plan.company_levels.items()])
    if plan.changed:
        await session.execute(update(Contact), [{"id": contact_id, **_columns(row.contact, company_ids)}
                                                for contact_id, row in plan.changed])
        for chunk in chunks([contact_id for contact_id, _ in plan.changed]):
            await session.execute(delete(ContactNumber).where(ContactNumber.contact_id.in_(chunk)))
    new_ids = await _insert_contacts(session, plan.new, company_ids)
    numbers = [{"contact_id": contact_id, "number": number}
               for contact_id, row in [*plan.changed, *zip(new_ids, plan.new, strict=True)]
               for number in row.contact.numbers]
    if numbers:
        await session.execute(insert(ContactNumber), numbers)


def _columns(contact: ContactInput, company_ids: dict[str, int]) -> dict[str, Any]:
    return {"name": contact.name, "email": contact.email, "language": contact.language, "vip": contact.vip,
            "company_id": company_ids[contact.company] if contact.company else None}


async def _insert_contacts(session: AsyncSession, rows: list[CsvRow], company_ids: dict[str, int]) -> list[int]:
    """The new contacts' ids, in the order of ``rows`` (one multi-row INSERT ... RETURNING per batch)."""
    if not rows:
        return []
    statement = insert(CONTACTS).returning(CONTACTS.c.id, sort_by_parameter_order=True)
    result = await session.execute(statement, [_columns(row.contact, company_ids) for row in rows])
    return list(result.scalars())


async def _insert_companies(session: AsyncSession, levels: dict[str, str]) -> dict[str, int]:
    if not levels:
        return {}
    statement = insert(COMPANIES).returning(COMPANIES.c.id, sort_by_parameter_order=True)
    result = await session.execute(statement, [{"name": name, "contract_level": level, "vip": False}
                                               for name, level in levels.items()])
    return dict(zip(levels, result.scalars(), strict=True))


async def _owners(session: AsyncSession, numbers: Sequence[str]) -> dict[str, int]:
    """Which stored contact owns each of ``numbers`` (those nobody owns are absent)."""
    owners: dict[str, int] = {}
    for chunk in chunks(numbers):
        query = select(ContactNumber.number, ContactNumber.contact_id).where(ContactNumber.number.in_(chunk))
        owners.update((number, contact_id) for number, contact_id in await session.execute(query))
    return owners


async def _stored(session: AsyncSession, contact_ids: Sequence[int]) -> dict[int, Stored]:
    numbers = await numbers_of(session, contact_ids)
    stored: dict[int, Stored] = {}
    for chunk in chunks(contact_ids):
        query = (select(Contact.id, Contact.name, Contact.email, Contact.language, Contact.vip, Company.name)
                 .outerjoin(Company, Company.id == Contact.company_id).where(Contact.id.in_(chunk)))
        for contact_id, name, email, language, vip, company in await session.execute(query):
            stored[contact_id] = Stored(contact_id, name, email, language, vip, company,
                                        tuple(numbers.get(contact_id, ())))
    return stored


async def _companies(session: AsyncSession, names: Collection[str]) -> dict[str, tuple[int, str]]:
    """Stored companies by name: (id, contract level)."""
    found: dict[str, tuple[int, str]] = {}
    for chunk in chunks(list(names)):
        query = select(Company.name, Company.id, Company.contract_level).where(Company.name.in_(chunk))
        found.update((name, (company_id, level)) for name, company_id, level in await session.execute(query))
    return found


def chunks(items: Sequence[T]) -> Iterable[Sequence[T]]:
    return (items[start:start + CHUNK] for start in range(0, len(items), CHUNK))
