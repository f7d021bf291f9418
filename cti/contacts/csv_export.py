"""CSV export of every contact, in the columns the import reads: an export imports back unchanged."""

from __future__ import annotations

import csv
import io

from sqlalchemy import select

from cti.contacts.csv_import import COLUMNS
from cti.contacts.models import Company, Contact, ContactNumber
from cti.db import Database


async def export_csv(db: Database) -> str:
    """UTF-8 text, ',' between columns, ';' between a contact's numbers (E.164), contacts by id."""
    async with db.session() as session:
        numbers: dict[int, list[str]] = {}
        for contact_id, number in await session.execute(
                select(ContactNumber.contact_id, ContactNumber.number).order_by(ContactNumber.id)):
            numbers.setdefault(contact_id, []).append(number)
        rows = (await session.execute(
            select(Contact.id, Contact.name, Contact.email, Company.name, Company.contract_level, Contact.vip,
                   Contact.language).outerjoin(Company, Company.id == Contact.company_id).order_by(Contact.id)
        )).all()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for contact_id, name, email, company, level, vip, language in rows:
        writer.writerow([name, ";".join(numbers.get(contact_id, ())), email, company or "", level or "",
                         "yes" if vip else "no", language or ""])
    return out.getvalue()
