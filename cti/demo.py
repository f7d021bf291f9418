"""Demo data: two service numbers (English and French) so a fresh install answers calls at once."""

from __future__ import annotations

from sqlalchemy import select

from cti.db import Database
from cti.db.models import ServiceNumber

DEMO_NUMBERS = (
    ("5551000", "Help desk (English)", "en"),
    ("5552000", "Support (français)", "fr"),
)


async def seed_demo(db: Database) -> int:
    """Idempotent: adds the numbers that are missing; returns how many were added."""
    added = 0
    async with db.session() as session:
        existing = set(await session.scalars(select(ServiceNumber.number)))
        for number, name, language in DEMO_NUMBERS:
            if number not in existing:
                session.add(ServiceNumber(number=number, name=name, language=language))
                added += 1
    return added
