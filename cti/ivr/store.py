"""Reads and writes a service's flow and hours documents; validation happens before, in the service."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cti.db import Database
from cti.db.models import ServiceNumber
from cti.ivr.errors import ServiceNotFound
from cti.ivr.models import IvrFlow, ServiceHours


@dataclass(frozen=True)
class StoredService:
    """One service number with its documents as stored (None when not configured yet)."""

    service: ServiceNumber
    flow: dict[str, Any] | None
    flow_version: int
    hours: dict[str, Any] | None
    override: dict[str, Any] | None


async def load_service(db: Database, number: str, *, enabled_only: bool = True) -> StoredService | None:
    async with db.session() as session:
        query = select(ServiceNumber).where(ServiceNumber.number == number)
        if enabled_only:
            query = query.where(ServiceNumber.enabled.is_(True))
        service = (await session.scalars(query)).first()
        if service is None:
            return None
        flow = await session.scalar(select(IvrFlow).where(IvrFlow.service_id == service.id))
        hours = await session.get(ServiceHours, service.id)
        return StoredService(service, flow.definition if flow else None, flow.version if flow else 0,
                             hours.definition if hours else None, _override(hours))


def _override(hours: ServiceHours | None) -> dict[str, Any] | None:
    if hours is None or hours.override_state is None or hours.override_until is None:
        return None
    return {"state": hours.override_state, "until": hours.override_until.isoformat(),
            "reason": hours.override_reason}


async def require_service(session: AsyncSession, number: str) -> ServiceNumber:
    service = (await session.scalars(select(ServiceNumber).where(ServiceNumber.number == number))).first()
    if service is None:
        raise ServiceNotFound(f"no service number {number!r}")
    return service


async def write_flow(session: AsyncSession, service: ServiceNumber, definition: dict[str, Any], author: str) -> int:
    """Stores the flow and bumps its version (running calls keep the version they started with)."""
    row = await session.scalar(select(IvrFlow).where(IvrFlow.service_id == service.id))
    if row is None:
        row = IvrFlow(service_id=service.id, definition=definition, version=1, updated_by=author)
        session.add(row)
    else:
        row.definition, row.version, row.updated_by = definition, row.version + 1, author
    await session.flush()
    return row.version


async def write_hours(session: AsyncSession, service: ServiceNumber, definition: dict[str, Any], author: str) -> None:
    row = await session.get(ServiceHours, service.id)
    if row is None:
        session.add(ServiceHours(service_id=service.id, definition=definition, updated_by=author))
    else:
        row.definition, row.updated_by = definition, author


async def write_override(session: AsyncSession, service: ServiceNumber, state: str | None,
                         until: datetime | None, reason: str, author: str) -> None:
    """``state`` None clears the override."""
    row = await session.get(ServiceHours, service.id)
    if row is None:
        raise ServiceNotFound(f"service {service.number!r} has no opening hours to override")
    row.override_state, row.override_until = state, until
    row.override_reason, row.override_by = reason, author
