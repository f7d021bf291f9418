"""Today's figures per queue for the wallboard, kept up to date without re-reading the whole day.

The wallboard re-reads today's figures every few seconds and after each call event; reading every row of the
day each time costs CPU and memory in proportion to the day's calls. So :class:`TodayFigures` keeps the
figures of the calls that ended before a watermark W (``settled``) and, on each read, adds only the calls
that ended since (up to ``SETTLE_MARGIN_S`` ago) and counts afresh the few still open or ended after W.

A row can still change after its call ended (the ACD and the queue script both write it, a restarting node
writes the answer it missed) or arrive late with an ``ended_at`` in the past (written after a database
outage): the margin covers the usual delays, and a full recount every ``FULL_RECOUNT_S`` picks up the rest.
The figures are exact again after the next full recount. The database makes that count (``count_by_queue``):
streamed through the server, the day's rows came back every 5 minutes as a burst of memory on every node, a
screen open or not, and each burst left the heap a little bigger.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, or_

from cti.db import Database
from cti.db.models import CallRecord
from cti.settings import SupervisionSettings
from cti.supervision.reports import Figures, count_by_queue, day_bounds, started_in, stream_calls, targets

SETTLE_MARGIN_S = 120.0  # a row that ended longer ago than this is taken as final until the next full recount
FULL_RECOUNT_S = 300.0  # the settled figures are counted afresh at least this often (late rows, corrections)


@dataclass
class _Settled:
    """The calls of ``day`` (``[start, end)``) that ended before ``watermark``, counted with ``levels``."""

    day: date
    start: datetime
    end: datetime
    levels: dict[str, int]
    watermark: datetime
    counted_at: datetime  # the last full recount
    figures: dict[str, Figures] = field(default_factory=dict)


class TodayFigures:
    """Today's queued calls (the desk's day, ``settings.timezone``) per queue and in total. ``read`` is safe to
    call from several tasks: reads take turns, so a span of rows is never added twice."""

    def __init__(self, db: Database, settings: SupervisionSettings, *, margin_s: float = SETTLE_MARGIN_S,
                 recount_s: float = FULL_RECOUNT_S) -> None:
        self.db, self.settings = db, settings
        self.zone = ZoneInfo(settings.timezone)
        self._margin = timedelta(seconds=margin_s)
        self._recount = timedelta(seconds=recount_s)
        self._lock = asyncio.Lock()
        self._settled: _Settled | None = None

    async def read(self, service_levels: Mapping[str, int], now: datetime) -> dict[str, Any]:
        """The figures at ``now`` (aware), in the shape the wallboard publishes (``day``, ``at``, ``queues``,
        ``total``); ``service_levels``: each queue's target (a change means a full recount)."""
        async with self._lock:
            day = now.astimezone(self.zone).date()
            settled = self._settled
            if settled is None or self._due(settled, day, dict(service_levels), now):
                settled = self._settled = await self._count_all(day, dict(service_levels), now)
            else:
                await self._count_since(settled, now)
            live = or_(CallRecord.ended_at.is_(None), CallRecord.ended_at >= settled.watermark)
            return _view(day, now, _merged(settled.figures, await self._per_queue(settled, live)))

    def _due(self, settled: _Settled, day: date, levels: dict[str, int], now: datetime) -> bool:
        """A full recount: a new day, other targets, or the last one too old (or the clock went back)."""
        if day != settled.day or levels != settled.levels:
            return True
        return not timedelta(0) <= now - settled.counted_at < self._recount

    async def _count_all(self, day: date, levels: dict[str, int], now: datetime) -> _Settled:
        start, end = day_bounds(day, day, self.zone)
        settled = _Settled(day, start, end, levels, watermark=now - self._margin, counted_at=now)
        settled.figures = await count_by_queue(self.db, levels, self.settings.answer_within_s,
                                               CallRecord.queue.is_not(None), started_in(start, end),
                                               CallRecord.ended_at < settled.watermark)
        return settled

    async def _count_since(self, settled: _Settled, now: datetime) -> None:
        """Adds the calls that ended in [W, now - margin) and moves W there (all or nothing, should the read fail)."""
        watermark = now - self._margin
        if watermark <= settled.watermark:
            return
        since = and_(CallRecord.ended_at >= settled.watermark, CallRecord.ended_at < watermark)
        settled.figures, settled.watermark = _merged(settled.figures, await self._per_queue(settled, since)), watermark

    async def _per_queue(self, settled: _Settled, *where: ColumnElement[bool]) -> dict[str, Figures]:
        """The Figures per queue of the day's queued calls matching ``where``, folded as the rows come. The day is
        checked here, not in SQL: there SQLite would prefer the day's range on ``started_at`` to the few rows a
        condition on ``ended_at`` finds through its index, and scan the whole day."""
        target_of = targets(settled.levels, self.settings.answer_within_s)
        found: dict[str, Figures] = {}
        async with aclosing(stream_calls(self.db, CallRecord.queue.is_not(None), *where)) as calls:
            async for call in calls:
                if settled.start <= call.started_at < settled.end:
                    found.setdefault(call.queue or "", Figures()).add(call, target_of(call.queue))
        return found


def _view(day: date, now: datetime, per_queue: Mapping[str, Figures]) -> dict[str, Any]:
    """What the wallboard publishes as ``today``: each queue's figures (sorted by name) and their total."""
    total = Figures()
    for figures in per_queue.values():
        total.merge(figures)
    return {"day": day.isoformat(), "at": now.timestamp(),
            "queues": {name: figures.as_dict() for name, figures in sorted(per_queue.items())},
            "total": total.as_dict()}


def _merged(*parts: Mapping[str, Figures]) -> dict[str, Figures]:
    """New Figures per key adding up ``parts`` (which are left as they are)."""
    found: dict[str, Figures] = {}
    for part in parts:
        for key, figures in part.items():
            found.setdefault(key, Figures()).merge(figures)
    return found
