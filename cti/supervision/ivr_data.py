"""What the opening-hours, call-flow and simulator pages share: the IVR service they read, the service numbers
they offer (each page picks its number with ``?number=`` the same way), and wall-clock times in a zone.

Times are shown and typed as the service's wall clock (``2026-11-23T18:00`` in Europe/Paris): that is how a
supervisor thinks of "closed until six", wherever their own browser is.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiohttp import web
from sqlalchemy import select

from cti.db.models import ServiceNumber
from cti.ivr.service import IvrService
from cti.ivr.store import StoredService

IVR_PAGES_KEY: web.AppKey[IvrService] = web.AppKey("supervision_ivr", IvrService)
DEFAULT_ZONE = "Europe/Paris"
WALL_FORMAT = "%Y-%m-%dT%H:%M"


async def stored_services(ivr: IvrService) -> list[StoredService]:
    """Every service number (enabled or not) with its stored documents, by number."""
    async with ivr.db.session() as session:
        numbers = list(await session.scalars(select(ServiceNumber.number).order_by(ServiceNumber.number)))
    return [await ivr.stored(number) for number in numbers]


def chosen(services: list[StoredService], requested: str | None) -> StoredService | None:
    """The number named in ``?number=``, else the first; a name that is not a service is a 404, not another page."""
    if not requested:
        return services[0] if services else None
    found = next((stored for stored in services if stored.service.number == requested), None)
    if found is None:
        raise web.HTTPNotFound(text=f"no service number {requested!r}")
    return found


def choices(services: list[StoredService]) -> list[dict[str, Any]]:
    """The numbers as the pages' selectors list them."""
    return [{"number": stored.service.number, "name": stored.service.name, "enabled": stored.service.enabled,
             "timezone": zone_name(stored)} for stored in services]


def zone_name(stored: StoredService) -> str:
    """The service's time zone (its hours'), or Paris for a number without hours."""
    zone = (stored.hours or {}).get("timezone")
    return zone if isinstance(zone, str) and zone else DEFAULT_ZONE


def wall_time(instant: datetime | str | None, zone: str) -> str:
    """``YYYY-MM-DDTHH:MM`` in ``zone`` (what a datetime-local field holds); "" for None."""
    if instant is None:
        return ""
    moment = datetime.fromisoformat(instant) if isinstance(instant, str) else instant
    try:
        return moment.astimezone(ZoneInfo(zone)).strftime(WALL_FORMAT)
    except (ZoneInfoNotFoundError, ValueError):
        return moment.strftime(WALL_FORMAT)
