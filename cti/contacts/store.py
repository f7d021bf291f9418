"""Contacts and companies: the data every screen pop and IVR caller rule looks up by number.

Every method is one transaction. A number belongs to one contact only (a second owner is refused with
:class:`NumberTaken` naming the first), so a lookup never has to choose. Two writers racing for the same
new number or company both pass the checks; the database's unique constraint stops the second, whose
work is run once more and then refused by the checks with a clear reason.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from sqlalchemy import ColumnElement, Select, delete, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from cti.contacts.directory import normalise_number
from cti.contacts.errors import CompanyExists, CompanyNotFound, ContactInvalid, ContactNotFound, NumberTaken
from cti.contacts.models import Company, Contact, ContactNumber
from cti.contacts.validation import DEFAULT_LEVEL, ContactInput, check_company, check_contact
from cti.db import Database

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_PAGE = 500
CHUNK = 900  # values per IN (...): under every engine's limit on bound parameters


@dataclass(frozen=True)
class CompanyView:
    """``contacts`` is counted by :meth:`ContactStore.list_companies` only (0 elsewhere)."""

    id: int
    name: str
    contract_level: str
    vip: bool
    contacts: int = 0


@dataclass(frozen=True)
class ContactView:
    id: int
    name: str
    email: str
    language: str | None
    vip: bool
    numbers: tuple[str, ...]
    company: CompanyView | None
    created_at: datetime


@dataclass(frozen=True)
class ContactPage:
    contacts: list[ContactView]
    total: int
    limit: int
    offset: int


class ContactStore:
    """``contract_levels``: the allowed contract levels (the configured SLA levels); empty allows any."""

    def __init__(self, db: Database, region: str, contract_levels: Collection[str] = ()) -> None:
        self.db = db
        self.region = region
        self.contract_levels = frozenset(contract_levels)

    def check(self, data: ContactInput) -> ContactInput:
        """``data`` normalised (E.164 numbers, stripped text), or ContactInvalid naming every bad field."""
        return check_contact(data, self.region, self.contract_levels)

    # --- contacts ----------------------------------------------------------------------------------

    async def create(self, data: ContactInput) -> ContactView:
        """A new contact (and its company when new); NumberTaken if a number is already someone's."""
        clean = self.check(data)

        async def work(session: AsyncSession) -> int:
            await refuse_taken(session, clean.numbers)
            contact = Contact(name=clean.name, company_id=await company_id_for(session, clean))
            _fill(contact, clean)
            session.add(contact)
            await session.flush()
            session.add_all(ContactNumber(contact_id=contact.id, number=number) for number in clean.numbers)
            return contact.id

        return await self.get(await self._write(work))

    async def get(self, contact_id: int) -> ContactView:
        async with self.db.session() as session:
            found = await contact_views(session, _contacts().where(Contact.id == contact_id))
        if not found:
            raise ContactNotFound(f"no contact {contact_id}")
        return found[0]

    async def search(self, text: str = "", number: str = "", limit: int = 50, offset: int = 0) -> ContactPage:
        """Contacts whose name contains ``text`` (any case) and who own ``number`` (normalised first);
        with neither, every contact: a page of them, sorted by name, and how many match in all."""
        limit, offset = max(1, min(limit, MAX_PAGE)), max(0, offset)
        conditions = self._conditions(text, number)
        async with self.db.session() as session:
            total = await session.scalar(select(func.count()).select_from(Contact).where(*conditions))
            page = _contacts().where(*conditions).order_by(func.lower(Contact.name), Contact.id)
            views = await contact_views(session, page.limit(limit).offset(offset))
        return ContactPage(views, int(total or 0), limit, offset)

    async def update(self, contact_id: int, data: ContactInput) -> ContactView:
        """Replaces the whole contact, its numbers included, in one transaction."""
        clean = self.check(data)

        async def work(session: AsyncSession) -> int:
            contact = await session.get(Contact, contact_id, with_for_update=True)
            if contact is None:
                raise ContactNotFound(f"no contact {contact_id}")
            await refuse_taken(session, clean.numbers, contact_id)
            contact.name, contact.company_id = clean.name, await company_id_for(session, clean)
            _fill(contact, clean)
            await session.execute(delete(ContactNumber).where(ContactNumber.contact_id == contact_id))
            session.add_all(ContactNumber(contact_id=contact_id, number=number) for number in clean.numbers)
            return contact_id

        return await self.get(await self._write(work))

    async def delete(self, contact_id: int) -> None:
        """The contact and its numbers: a call from them is unknown from now on. Its company stays."""
        async with self.db.session() as session:
            await session.execute(delete(ContactNumber).where(ContactNumber.contact_id == contact_id))
            result = await session.execute(delete(Contact).where(Contact.id == contact_id))
        if not getattr(result, "rowcount", 0):
            raise ContactNotFound(f"no contact {contact_id}")

    def _conditions(self, text: str, number: str) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = []
        if text.strip():
            needle = text.strip()
            # SQLite's lower() folds ASCII only: the exact-case match keeps "Élodie" findable there
            conditions.append(or_(Contact.name.icontains(needle, autoescape=True),
                                  Contact.name.contains(needle, autoescape=True)))
        if number.strip():
            owners = select(ContactNumber.contact_id).where(
                ContactNumber.number == normalise_number(number, self.region))
            conditions.append(Contact.id.in_(owners))
        return conditions

    # --- companies ---------------------------------------------------------------------------------

    async def list_companies(self) -> list[CompanyView]:
        """Every company by name, with how many contacts it has (what deleting or merging it would touch)."""
        counts = (select(Contact.company_id, func.count().label("n")).where(Contact.company_id.is_not(None))
                  .group_by(Contact.company_id).subquery())
        query = (select(Company, func.coalesce(counts.c.n, 0)).outerjoin(counts, counts.c.company_id == Company.id)
                 .order_by(Company.name))
        async with self.db.session() as session:
            rows = (await session.execute(query)).all()
        return [company_view(company, int(count)) for company, count in rows]

    async def get_company(self, company_id: int) -> CompanyView:
        async with self.db.session() as session:
            company = await session.get(Company, company_id)
        if company is None:
            raise CompanyNotFound(f"no company {company_id}")
        return company_view(company)

    async def create_company(self, name: str, contract_level: str = DEFAULT_LEVEL, vip: bool = False) -> CompanyView:
        name, contract_level = check_company(name, contract_level, self.contract_levels)

        async def work(session: AsyncSession) -> CompanyView:
            await refuse_company_name(session, name)
            company = Company(name=name, contract_level=contract_level, vip=vip)
            session.add(company)
            await session.flush()
            return company_view(company)

        return await self._write(work)

    async def update_company(self, company_id: int, *, name: str | None = None, contract_level: str | None = None,
                             vip: bool | None = None) -> CompanyView:
        """Changes what is given; a company's contract level applies at once to every call of its contacts."""

        async def work(session: AsyncSession) -> CompanyView:
            company = await session.get(Company, company_id, with_for_update=True)
            if company is None:
                raise CompanyNotFound(f"no company {company_id}")
            new_name, level = check_company(company.name if name is None else name,
                                             contract_level or company.contract_level, self.contract_levels)
            if new_name != company.name:
                await refuse_company_name(session, new_name)
            company.name, company.contract_level = new_name, level
            company.vip = company.vip if vip is None else vip
            await session.flush()
            return company_view(company)

        return await self._write(work)

    async def _write(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """``work`` in one transaction, run a second time after a unique-constraint race (see the module)."""
        try:
            async with self.db.session() as session:
                return await work(session)
        except IntegrityError as exc:
            log.info("contacts: concurrent write, checking again (%s)", exc.orig)
        async with self.db.session() as session:
            return await work(session)


def _contacts() -> Select[Contact, Company]:
    return select(Contact, Company).outerjoin(Company, Company.id == Contact.company_id)


def _fill(contact: Contact, clean: ContactInput) -> None:
    contact.email, contact.language, contact.vip = clean.email, clean.language, clean.vip


def company_view(company: Company, contacts: int = 0) -> CompanyView:
    return CompanyView(company.id, company.name, company.contract_level, company.vip, contacts)


async def contact_views(session: AsyncSession, query: Select[Contact, Company]) -> list[ContactView]:
    """The contacts ``query`` selects (with their company), and their numbers in one more query."""
    rows = (await session.execute(query)).all()
    numbers = await numbers_of(session, [contact.id for contact, _ in rows])
    return [ContactView(contact.id, contact.name, contact.email, contact.language, contact.vip,
                        tuple(numbers.get(contact.id, ())), company_view(company) if company else None,
                        contact.created_at) for contact, company in rows]


async def numbers_of(session: AsyncSession, contact_ids: Sequence[int]) -> dict[int, list[str]]:
    """Each contact's numbers in the order they were given, a few hundred contacts per query."""
    found: dict[int, list[str]] = {}
    for start in range(0, len(contact_ids), CHUNK):
        query = (select(ContactNumber.contact_id, ContactNumber.number)
                 .where(ContactNumber.contact_id.in_(contact_ids[start:start + CHUNK])).order_by(ContactNumber.id))
        for contact_id, number in await session.execute(query):
            found.setdefault(contact_id, []).append(number)
    return found



async def refuse_taken(session: AsyncSession, numbers: Sequence[str], contact_id: int | None = None) -> None:
    """NumberTaken when another contact than ``contact_id`` owns one of ``numbers``."""
    query = (select(ContactNumber.number, Contact.id, Contact.name)
             .join(Contact, Contact.id == ContactNumber.contact_id)
             .where(ContactNumber.number.in_(numbers)).order_by(ContactNumber.id).limit(1))
    if contact_id is not None:
        query = query.where(Contact.id != contact_id)
    row = (await session.execute(query)).first()
    if row is not None:
        raise NumberTaken(row[0], row[1], row[2])


async def company_id_for(session: AsyncSession, clean: ContactInput) -> int | None:
    """The contact's company, created when missing; a given level or VIP flag must match an existing one
    (a contact form must not change a company's contract: that is an edit of the company itself)."""
    if clean.company is None:
        return None
    company = await session.scalar(select(Company).where(Company.name == clean.company))
    if company is None:
        company = Company(name=clean.company, contract_level=clean.contract_level or DEFAULT_LEVEL,
                          vip=bool(clean.company_vip))
        session.add(company)
        await session.flush()
        return company.id
    errors = []
    if clean.contract_level is not None and clean.contract_level != company.contract_level:
        errors.append(f"contract_level: {company.name!r} has the {company.contract_level!r} contract; "
                      "change it on the company itself")
    if clean.company_vip is not None and clean.company_vip != company.vip:
        errors.append(f"company_vip: change the VIP flag of {company.name!r} on the company itself")
    if errors:
        raise ContactInvalid(errors)
    return company.id


async def refuse_company_name(session: AsyncSession, name: str) -> None:
    existing = await session.scalar(select(Company.id).where(Company.name == name))
    if existing is not None:
        raise CompanyExists([f"name: a company named {name!r} already exists (company {existing})"])
