"""Looks a caller up by number: normalised to E.164, matched against contacts and blocked numbers."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

import phonenumbers
from sqlalchemy import or_, select

from cti.contacts.models import BlockedNumber, Company, Contact, ContactNumber
from cti.contacts.profile import CallerProfile, is_withheld
from cti.db import Database

log = logging.getLogger(__name__)


def normalise_number(raw: str, region: str) -> str:
    """E.164 when the number parses for ``region`` (national formats) or has a '+'; else digits as given."""
    cleaned = raw.strip()
    try:
        parsed = phonenumbers.parse(cleaned, region)
    except phonenumbers.NumberParseException:
        return cleaned
    if not phonenumbers.is_possible_number(parsed):
        return cleaned
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


@dataclass(frozen=True)
class CallerDirectory:
    db: Database
    region: str

    async def lookup(self, caller_id: str, now: datetime) -> CallerProfile:
        if is_withheld(caller_id):
            return CallerProfile(number="", anonymous=True)
        number = normalise_number(caller_id, self.region)
        at = now.astimezone(UTC)  # stored instants are UTC, and SQLite compares them as text without offsets
        async with self.db.session() as session:
            blocked = await session.scalar(select(BlockedNumber.id).where(
                BlockedNumber.number == number,
                or_(BlockedNumber.expires_at.is_(None), BlockedNumber.expires_at > at)))
            row = (await session.execute(
                select(Contact, Company).join(ContactNumber, ContactNumber.contact_id == Contact.id)
                .outerjoin(Company, Company.id == Contact.company_id).where(ContactNumber.number == number)
            )).first()
        if row is None:
            return CallerProfile(number=number, blocked=blocked is not None)
        contact, company = row
        return CallerProfile(
            number=number, blocked=blocked is not None, contact_id=contact.id, contact_name=contact.name,
            company_name=company.name if company else "",
            contract_level=company.contract_level if company else None,
            vip=contact.vip or bool(company and company.vip), language=contact.language)
