"""What the wallboard shows, on every server node: each node's snapshot, published and merged.

A node knows only the callers its own AGI sessions hold, so every node publishes its snapshot
(:func:`node_snapshot`: waiting calls, longest and estimated wait per queue; the agents' shared states; today's
figures from the calls table) on ``CHANNEL`` of the shared state every second, and soon after an ACD change.
Every node keeps the latest snapshot of each node and :func:`merge` builds the view its screens get: waiting
calls add up, the longest and estimated waits are the largest, agents and today's figures come from the
freshest snapshot (every node sees them alike). A node silent for ``NODE_TIMEOUT_S`` is left out. With the
shared state down a node shows its own snapshot only. Thresholds (``[supervision]``) are applied here, so every
screen turns the same figures red.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from cti.acd.calls import CallPhase, QueuedCall
from cti.acd.model import AgentState
from cti.acd.recovery import Verdict
from cti.acd.service import AcdService
from cti.acd.shared import CHANNEL as ACD_CHANNEL
from cti.db import Database
from cti.db.base import utcnow
from cti.event_wait import wait_set
from cti.outage_log import OutageLog
from cti.settings import SupervisionSettings
from cti.state import StateBackend
from cti.state.errors import StateError
from cti.state.follow import follow
from cti.supervision.reports import Figures
from cti.supervision.today_figures import TodayFigures

log = logging.getLogger(__name__)

CHANNEL = "supervision:wallboard"
INTERVAL_S = 1.0  # every screen gets a view at least this often
SETTLE_S = 0.2  # after an ACD change: the ACD writes the call's row just after telling its listeners
TODAY_REFRESH_S = 5.0  # today's figures are brought up to date at least this often (and after each call event)
NODE_TIMEOUT_S = 5.0
RESUBSCRIBE_S = 1.0
BUSY = (AgentState.RINGING.value, AgentState.ON_CALL.value, AgentState.WRAP_UP.value)
IN_PROGRESS = (CallPhase.ASSIGNED, CallPhase.DIALING, CallPhase.ANSWERED)
EMPTY_FIGURES = Figures().as_dict()


def envelope(kind: str, view: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": kind, "data": view}


# --- one node ---------------------------------------------------------------------------------------------


def node_snapshot(acd: AcdService, today: Mapping[str, Any] | None, at: float) -> dict[str, Any]:
    """What this node publishes: its callers per queue, the agents as it sees them, today's figures."""
    stats = acd.stats()["queues"]
    in_progress: dict[str, int] = {}
    for call in acd.calls.values():
        if call.phase in IN_PROGRESS:
            in_progress[call.queue] = in_progress.get(call.queue, 0) + 1
    queues = {name: {"label": queue.label or name, "waiting": stats[name]["waiting"],
                     "longest_wait_s": stats[name]["longest_waiting_s"],
                     "estimated_wait_s": stats[name]["estimated_wait_s"], "in_progress": in_progress.get(name, 0)}
              for name, queue in acd.queues.items()}  # fmt: skip
    agents = [{key: row[key] for key in ("id", "name", "team", "state", "reason", "since_s")}
              for row in acd.agent_states()]
    return {"node": acd.node_id, "at": at, "queues": queues, "agents": agents, "today": today}


# --- every node -------------------------------------------------------------------------------------------


def merge(snapshots: Iterable[Mapping[str, Any]], settings: SupervisionSettings) -> dict[str, Any]:
    """The wallboard's view from the latest snapshot of each node (see the module docstring)."""
    ordered = sorted(snapshots, key=lambda snapshot: snapshot["at"])
    today = max((s["today"] for s in ordered if s.get("today")), key=lambda t: t["at"], default=None)
    queues = _queues(ordered, today)
    for queue in queues:
        queue["alerts"] = alerts(queue, settings)
    agents = _agents(ordered[-1]["agents"] if ordered else [])
    totals = {"waiting": sum(q["waiting"] for q in queues), "in_progress": sum(q["in_progress"] for q in queues),
              "longest_wait_s": max((q["longest_wait_s"] for q in queues), default=0.0),
              "estimated_wait_s": _largest(q["estimated_wait_s"] for q in queues),
              **(today["total"] if today else EMPTY_FIGURES), "occupancy_pct": agents["occupancy_pct"]}
    totals["alerts"] = alerts(totals, settings)
    return {"nodes": [s["node"] for s in ordered], "at": ordered[-1]["at"] if ordered else None,
            "day": today["day"] if today else None, "timezone": settings.timezone, "queues": queues,
            "totals": totals, "agents": agents, "thresholds": thresholds(settings)}


def _queues(ordered: list[Mapping[str, Any]], today: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    merged: dict[str, dict[str, Any]] = {}
    for snapshot in ordered:
        for name, live in snapshot["queues"].items():
            row = merged.setdefault(name, {"name": name, "label": live["label"], "waiting": 0, "in_progress": 0,
                                           "longest_wait_s": 0.0, "estimated_wait_s": None})
            row["waiting"] += live["waiting"]
            row["in_progress"] += live["in_progress"]
            row["longest_wait_s"] = max(row["longest_wait_s"], live["longest_wait_s"])
            row["estimated_wait_s"] = _largest((row["estimated_wait_s"], live["estimated_wait_s"]))
    figures = today["queues"] if today else {}
    return [{**row, **figures.get(name, EMPTY_FIGURES)} for name, row in sorted(merged.items())]


def _agents(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Agents by state, paused ones by reason, and occupancy: busy agents over busy and available ones."""
    by_state = {state.value: 0 for state in AgentState}
    reasons: dict[str, int] = {}
    for row in rows:
        by_state[row["state"]] = by_state.get(row["state"], 0) + 1
        if row["state"] == AgentState.PAUSED.value:
            reason = row["reason"] or "paused"
            reasons[reason] = reasons.get(reason, 0) + 1
    busy = sum(by_state[state] for state in BUSY)
    staffed = busy + by_state[AgentState.AVAILABLE.value]
    occupancy = round(100.0 * busy / staffed, 1) if staffed else None
    return {"list": sorted(rows, key=lambda row: (row["name"].lower(), row["id"])), "by_state": by_state,
            "pause_reasons": dict(sorted(reasons.items())), "occupancy_pct": occupancy}


def _largest(values: Iterable[float | int | None]) -> float | int | None:
    return max((value for value in values if value is not None), default=None)


def thresholds(settings: SupervisionSettings) -> dict[str, float]:
    return {"service_level_min": settings.service_level_min, "abandon_rate_max": settings.abandon_rate_max,
            "longest_wait_max_s": settings.longest_wait_max_s, "asa_max_s": settings.asa_max_s,
            "occupancy_max": settings.occupancy_max, "waiting_max": settings.waiting_max}


def alerts(figures: Mapping[str, Any], settings: SupervisionSettings) -> list[str]:
    """The figures of a queue (or of the totals) past their threshold; a figure not known yet never alerts."""
    limits = ((settings.service_level_min, "service_level_pct", -1), (settings.abandon_rate_max, "abandon_rate_pct", 1),
              (settings.longest_wait_max_s, "longest_wait_s", 1), (settings.asa_max_s, "asa_s", 1),
              (settings.occupancy_max, "occupancy_pct", 1), (settings.waiting_max, "waiting", 1))
    return [name for limit, name, sign in limits
            if figures.get(name) is not None and sign * (figures[name] - limit) > 0]


# --- the screens of this node -----------------------------------------------------------------------------


class Viewer:
    """One wallboard socket. Only the newest view waits to be sent: a slow screen skips to the present
    instead of falling behind."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self._ws = ws
        self._latest: str | None = None
        self._ready = asyncio.Event()
        self._task = asyncio.create_task(self._send(), name="wallboard-viewer")

    def push(self, text: str) -> None:
        self._latest = text
        self._ready.set()

    async def aclose(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _send(self) -> None:
        while True:
            await self._ready.wait()
            self._ready.clear()
            text, self._latest = self._latest, None
            if text is None:
                continue
            if self._ws.closed:
                return
            try:
                await self._ws.send_str(text)
            except (ConnectionError, RuntimeError):  # the screen went away mid-send: its reader sees it too
                return


class WallboardFeed:
    """Publishes this node's snapshot, keeps every node's latest, and pushes the merged view to this node's
    screens on each snapshot received. Also an ACD listener (:mod:`cti.acd.listeners`): a call event triggers
    a publish soon, with today's figures brought up to date (:class:`TodayFigures`: the calls that ended lately
    and the open ones are read, not the whole day)."""

    def __init__(self, acd: AcdService, db: Database, state: StateBackend, settings: SupervisionSettings, *,
                 interval_s: float = INTERVAL_S, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.acd, self.db, self.state, self.settings = acd, db, state, settings
        self._interval_s = interval_s
        self._monotonic = monotonic
        self._nodes: dict[str, tuple[float, dict[str, Any]]] = {}
        self._viewers: set[Viewer] = set()
        self._figures = TodayFigures(db, settings)
        self._today: dict[str, Any] | None = None
        self._today_read_at: float | None = None
        self._today_log = OutageLog(log, "wallboard: could not read today's figures")  # once per outage
        self._publish_log = OutageLog(log, "wallboard: could not publish this node's snapshot")
        self._wake = asyncio.Event()
        self._ready = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Returns once the feed is subscribed (or has failed once and retries in the background)."""
        if self not in self.acd.listeners:
            self.acd.listeners.append(self)
        self._tasks = [asyncio.create_task(self._follow(), name="wallboard-follow")]
        await wait_set(self._ready, 5.0)
        self._tasks.append(asyncio.create_task(self._publish_loop(), name="wallboard-publish"))

    async def stop(self) -> None:
        if self in self.acd.listeners:
            self.acd.listeners.remove(self)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    # --- screens ----------------------------------------------------------------------------------------

    def add(self, viewer: Viewer) -> None:
        self._viewers.add(viewer)

    def remove(self, viewer: Viewer) -> None:
        self._viewers.discard(viewer)

    @property
    def viewers(self) -> int:
        return len(self._viewers)

    def view(self) -> dict[str, Any]:
        """The merged view of the nodes heard from in the last ``NODE_TIMEOUT_S``."""
        oldest = self._monotonic() - NODE_TIMEOUT_S
        for node, (heard, _) in list(self._nodes.items()):
            if heard < oldest:
                del self._nodes[node]
        return merge([snapshot for _, snapshot in self._nodes.values()], self.settings)

    def receive(self, message: str) -> None:
        """A node's snapshot (ours included): kept, then the merged view goes to every screen of this node."""
        try:
            snapshot = json.loads(message)
            node = str(snapshot["node"])
        except (ValueError, KeyError, TypeError):
            log.warning("wallboard: ignored a malformed snapshot %r", message[:80])
            return
        self._nodes[node] = (self._monotonic(), snapshot)
        if self._viewers:
            text = json.dumps(envelope("update", self.view()), separators=(",", ":"))
            for viewer in list(self._viewers):
                viewer.push(text)

    # --- publishing -------------------------------------------------------------------------------------

    async def publish(self) -> dict[str, Any]:
        """Build and publish this node's snapshot now; delivered here directly when the shared state is down."""
        snapshot = node_snapshot(self.acd, await self._today_figures(), datetime.now(UTC).timestamp())
        text = json.dumps(snapshot, separators=(",", ":"))
        try:
            await self.state.publish(CHANNEL, text)
        except StateError:
            self.receive(text)
        return snapshot

    def soon(self, *, reread_today: bool = False) -> None:
        """Publish shortly (``SETTLE_S``): an ACD change happened; ``reread_today``: a call's row changed."""
        if reread_today:
            self._today_read_at = None
        asyncio.get_running_loop().call_later(SETTLE_S, self._wake.set)

    async def _today_figures(self) -> dict[str, Any] | None:
        now = self._monotonic()
        if self._today_read_at is None or now - self._today_read_at >= TODAY_REFRESH_S:
            try:
                levels = {name: queue.service_level_s for name, queue in self.acd.queues.items()}
                self._today = await self._figures.read(levels, utcnow())
            except Exception as exc:  # the database may be down: the live part of the wallboard goes on
                self._today_log.failed(exc)
            else:
                self._today_log.ok()
            self._today_read_at = now
        return self._today

    async def _publish_loop(self) -> None:
        while True:
            await wait_set(self._wake, self._interval_s)
            self._wake.clear()
            try:
                await self.publish()
            except Exception as exc:
                self._publish_log.failed(exc)
                await asyncio.sleep(self._interval_s)
            else:
                self._publish_log.ok()

    async def _follow(self) -> None:
        """Every node's snapshots, and the agents' state changes (which trigger a publish)."""
        await follow(self.state, (CHANNEL, ACD_CHANNEL), self._handle, name="wallboard", ready=self._ready,
                     retry_s=RESUBSCRIBE_S)

    def _handle(self, channel: str, message: str) -> None:
        if channel == CHANNEL:
            self.receive(message)
        else:
            self.soon()

    # --- the ACD's listener hooks -------------------------------------------------------------------------

    async def ringing(self, call: QueuedCall, agent_id: str) -> None:
        self.soon()

    async def answered(self, call: QueuedCall, agent_id: str) -> None:
        self.soon(reread_today=True)

    async def not_answered(self, call: QueuedCall, agent_id: str, status: str) -> None:
        self.soon()

    async def caller_left(self, call: QueuedCall, agent_id: str | None, reason: str) -> None:
        self.soon(reread_today=True)

    async def ended(self, call: QueuedCall, agent_id: str, talk_s: float) -> None:
        self.soon(reread_today=True)

    async def recovered(self, call_id: str, agent_id: str, outcome: Verdict) -> None:
        self.soon()


FEED_KEY: web.AppKey[WallboardFeed] = web.AppKey("wallboard_feed", WallboardFeed)
