"""The live wallboard: ``GET /supervision/wallboard`` (the page) and ``GET /ws/wallboard`` (its feed).

What a screen shows is built and merged across server nodes by :mod:`cti.supervision.wallboard_feed`; this
module holds the page, the socket and the texts. ``add_routes`` also plugs the reports, ``/metrics`` and the
API description in, so the supervision wiring needs one line for all of them.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from aiohttp import web

from cti.http.auth import page, requires
from cti.http.identity import identity_of
from cti.http.metrics import Sources
from cti.http.metrics import add_routes as add_metrics_routes
from cti.http.openapi import add_routes as add_openapi_routes
from cti.supervision import reports_page
from cti.supervision.pages import SUPERVISORS, render_page
from cti.supervision.wallboard_feed import FEED_KEY, Viewer, envelope
from cti.web.i18n import pick_language, register_messages, translator

if TYPE_CHECKING:
    from cti.supervision.wiring import Supervision

HEARTBEAT_S = 20.0
MAX_MESSAGE_BYTES = 4096  # the wallboard only listens; anything it sends is ignored

MESSAGES: dict[str, dict[str, str]] = {
    "wall.title": {"en": "Wallboard", "fr": "Tableau de bord"},
    "wall.connecting": {"en": "Connecting…", "fr": "Connexion…"},
    "wall.connected": {"en": "Live", "fr": "En direct"},
    "wall.reconnecting": {"en": "Connection lost, reconnecting…", "fr": "Connexion perdue, reconnexion…"},
    "wall.queues": {"en": "Queues", "fr": "Files d'attente"},
    "wall.queue": {"en": "Queue", "fr": "File"},
    "wall.total": {"en": "All queues", "fr": "Toutes les files"},
    "wall.waiting": {"en": "Waiting", "fr": "En attente"},
    "wall.in_progress": {"en": "With an agent", "fr": "Avec un agent"},
    "wall.longest_wait": {"en": "Longest wait (s)", "fr": "Attente max (s)"},
    "wall.ewt": {"en": "Estimated wait (s)", "fr": "Attente estimée (s)"},
    "wall.offered": {"en": "Calls today", "fr": "Appels du jour"},
    "wall.answered": {"en": "Answered", "fr": "Répondus"},
    "wall.abandoned": {"en": "Abandoned", "fr": "Abandonnés"},
    "wall.service_level": {"en": "Service level %", "fr": "Niveau de service %"},
    "wall.abandon_rate": {"en": "Abandon rate %", "fr": "Taux d'abandon %"},
    "wall.asa": {"en": "ASA (s)", "fr": "Attente moy. (s)"},
    "wall.aht": {"en": "AHT (s)", "fr": "Durée moy. (s)"},
    "wall.occupancy": {"en": "Occupancy %", "fr": "Occupation %"},
    "wall.agents": {"en": "Agents", "fr": "Agents"},
    "wall.agent": {"en": "Agent", "fr": "Agent"},
    "wall.state": {"en": "State", "fr": "État"},
    "wall.reason": {"en": "Pause reason", "fr": "Motif de pause"},
    "wall.since": {"en": "For", "fr": "Depuis"},
    "wall.pause_reasons": {"en": "Pauses", "fr": "Pauses"},
    "wall.count": {"en": "{label}: {count}", "fr": "{label} : {count}"},
    "wall.no_queues": {"en": "No queue configured.", "fr": "Aucune file configurée."},
    "wall.no_agents": {"en": "No agent configured.", "fr": "Aucun agent configuré."},
    "wall.today": {"en": "Today ({day}, {zone})", "fr": "Aujourd'hui ({day}, {zone})"},
    "wall.nodes": {"en": "Servers: {count}", "fr": "Serveurs : {count}"},
    "wall.thresholds": {"en": "Red: past the desk's thresholds", "fr": "En rouge : au-delà des seuils du centre"},
    "wall.state.logged_out": {"en": "Logged out", "fr": "Déconnecté"},
    "wall.state.available": {"en": "Available", "fr": "Disponible"},
    "wall.state.ringing": {"en": "Ringing", "fr": "Sonne"},
    "wall.state.on_call": {"en": "On a call", "fr": "En communication"},
    "wall.state.wrap_up": {"en": "Wrap-up", "fr": "Post-appel"},
    "wall.state.paused": {"en": "Paused", "fr": "En pause"},
}
register_messages(MESSAGES)


# --- HTTP -------------------------------------------------------------------------------------------------


@page
@requires(*SUPERVISORS)
async def wallboard_page(request: web.Request) -> web.StreamResponse:
    """The wallboard page; its script follows ``/ws/wallboard`` (the first view is in the page already)."""
    feed = request.app[FEED_KEY]
    t = translator(pick_language(request, identity_of(request)))
    config = {"messages": {key: t(key) for key in MESSAGES}, "socket": "/ws/wallboard", "view": feed.view()}
    return render_page(request, "wallboard.html", "wallboard", config=config)


@requires(*SUPERVISORS)
async def wallboard_socket(request: web.Request) -> web.StreamResponse:
    """The wallboard's feed: ``{"type": "snapshot", "data": view}`` at once, then ``update`` messages (the
    same view) at least every second and soon after each ACD change. Messages from the client are ignored."""
    feed = request.app[FEED_KEY]
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT_S, max_msg_size=MAX_MESSAGE_BYTES)
    await ws.prepare(request)
    await ws.send_str(json.dumps(envelope("snapshot", feed.view()), separators=(",", ":")))
    viewer = Viewer(ws)
    feed.add(viewer)
    try:
        async for _ in ws:
            pass
    finally:
        feed.remove(viewer)
        await viewer.aclose()
    return ws


def add_routes(app: web.Application, supervision: Supervision) -> None:
    """The wallboard, the reports, ``/metrics`` and ``/api/openapi.json``: one call from the supervision wiring."""
    app[FEED_KEY] = supervision.wallboard
    app.router.add_get("/supervision/wallboard", wallboard_page)
    app.router.add_get("/ws/wallboard", wallboard_socket)
    reports = reports_page.Reports(supervision.db, supervision.acd, supervision.settings.supervision)
    reports_page.add_routes(app, reports)
    add_metrics_routes(app, Sources(db=supervision.db, acd=supervision.acd))
    add_openapi_routes(app)

