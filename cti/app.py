"""Composition root: the one place that builds every service and passes dependencies in."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from cti import __version__
from cti.acd import http as acd_http
from cti.acd import live_http as acd_live_http
from cti.acd.service import AcdService
from cti.acd.shared import AgentBoard
from cti.acd.store import AcdStore
from cti.agents.wiring import Desktop, build_desktop
from cti.agi import FastAgiServer, ScriptRegistry
from cti.ami import AmiClient
from cti.audit import http as audit_http
from cti.audit.middleware import AUDIT_DB_KEY
from cti.channels import ChannelTracker
from cti.collector import CollectorWatch
from cti.contacts import http as contacts_http
from cti.db import Database, make_database
from cti.db.base import utcnow
from cti.http.app import make_web_app
from cti.ivr import http as ivr_http
from cti.ivr.service import Clock, IvrService, ivr_service
from cti.prompts import PromptStore
from cti.scripts.incoming import IncomingCall
from cti.scripts.queue import QueueScript
from cti.settings import Settings
from cti.state import StateBackend, make_state_backend
from cti.supervision.wiring import Supervision, add_supervision_routes
from cti.users import http as users_http
from cti.users.sessions import SessionStore
from cti.users.store import UserStore
from tickets import http as tickets_http
from tickets.events import TicketEvents
from tickets.service import TicketService
from tickets.voicemail.wiring import Voicemail, build_voicemail

log = logging.getLogger(__name__)


@dataclass
class CtiApp:
    """Everything one server process runs; ``start`` brings it up, ``stop`` takes it down in reverse."""

    settings: Settings
    db: Database
    state: StateBackend
    ami: AmiClient
    agi: FastAgiServer
    channels: ChannelTracker
    tickets: TicketService
    ivr: IvrService | None = None
    voicemail: Voicemail | None = None
    acd: AcdService | None = None
    desktop: Desktop | None = None
    supervision: Supervision | None = None
    collector: CollectorWatch = field(default_factory=CollectorWatch)
    web_app: web.Application = field(init=False)
    _runner: web.AppRunner | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        sessions = SessionStore(self.state, self.settings.security.session_ttl_s)  # shared by every node
        self.web_app = make_web_app(self.settings.security, self.status, sessions)
        users_http.add_routes(self.web_app, UserStore(self.db))
        self.web_app[AUDIT_DB_KEY] = self.db  # every change request is written to the audit log
        audit_http.add_routes(self.web_app)
        tickets_http.add_routes(self.web_app, self.tickets, self.settings.paths.media_dir)
        if self.ivr is not None:
            ivr_http.add_routes(self.web_app, self.ivr)
            contacts_http.add_routes(self.web_app, self.ivr.directory, self.settings.tickets.sla)
        if self.acd is not None:
            acd_http.add_config_routes(self.web_app, self.acd.store, self.acd.reload)
            acd_live_http.add_live_routes(self.web_app, self.acd)
        if self.desktop is not None:
            self.desktop.add_routes(self.web_app)
        if self.supervision is not None:
            add_supervision_routes(self.web_app, self.supervision)

    async def start(self) -> None:
        self.collector.start()
        await self.ami.start()  # connects in the background; calls are served even while Asterisk is down
        if self.acd is not None:
            await self.acd.start()
        if self.desktop is not None:
            await self.desktop.start()
        if self.supervision is not None:
            await self.supervision.start()
        await self.agi.start()
        if self.voicemail is not None:
            await self.voicemail.start()  # orphan recovery and the workers run in the background
        self._runner = web.AppRunner(self.web_app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.http.host, self.settings.http.port)
        await site.start()
        log.info("cti %s: AGI on %s:%s, HTTP on %s:%s", __version__, self.settings.agi.host, self.agi.port,
                 self.settings.http.host, self.http_port)

    @property
    def http_port(self) -> int:
        """The bound port (the setting may be 0 in tests)."""
        if self._runner is None or not self._runner.addresses:
            return self.settings.http.port
        return int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        await self.agi.stop()
        if self.supervision is not None:
            await self.supervision.stop()
        if self.desktop is not None:
            await self.desktop.stop()
        if self.acd is not None:
            await self.acd.stop()
        if self.voicemail is not None:
            await self.voicemail.stop()
        await self.ami.stop()
        await self.state.close()
        await self.db.close()
        self.collector.stop()

    async def status(self) -> dict[str, Any]:
        database, state = await asyncio.gather(_probe(self.db.ping()), _probe(self.state.ping()))
        ami = {"connected": self.ami.connected, "live_channels": len(self.channels.live), **self.ami.stats.as_dict()}
        agi = {"port": self.agi.port, "active_sessions": self.agi.active_sessions, **self.agi.stats.snapshot()}
        healthy = database["ok"] and state["ok"] and ami["connected"]
        return {"version": __version__, "healthy": healthy, "ami": ami, "agi": agi,
                "database": database, "state": state, "collector": self.collector.as_dict()}


async def _probe(check: Any) -> dict[str, Any]:
    try:
        await check
    except Exception as exc:  # any failure is reported, the status route must answer regardless
        return {"ok": False, "error": str(exc)}
    return {"ok": True}


def build_app(settings: Settings, clock: Clock = utcnow) -> CtiApp:
    """``clock``: the instant calls are handled at (opening hours); tests pass a fixed one."""
    db = make_database(settings.database)
    state = make_state_backend(settings.state)
    prompts = PromptStore(settings.paths.prompts_dir)
    tickets = TicketService(db, settings.tickets, publish=TicketEvents(state).publish)
    voicemail = build_voicemail(settings, db, prompts, tickets)
    ivr = ivr_service(settings, db, clock)
    registry = ScriptRegistry()
    registry.register("incoming")(IncomingCall(db, prompts, ivr, settings.asterisk.default_language,
                                               on_close=voicemail.abandoned_hook))
    registry.register("voicemail")(voicemail.script)
    ami = AmiClient(settings.ami)
    channels = ChannelTracker(ami)
    acd = AcdService(AcdStore(db), AgentBoard(state), state, db, ami, node_id=settings.acd.node_id, channels=channels)
    ivr.wait_estimate, ivr.queue_check = acd.wait_estimate, acd.queue_check
    registry.register("queue")(QueueScript(acd, db, prompts, ivr.directory, settings.acd,
                                           settings.asterisk.default_language))
    agi = FastAgiServer(registry, settings.agi)
    desktop = build_desktop(settings.agents, db=db, state=state, ami=ami, acd=acd, tickets=tickets,
                            directory=ivr.directory)
    supervision = Supervision(settings, db, state, ami, prompts, ivr, acd, desktop)
    return CtiApp(settings, db, state, ami, agi, channels, tickets, ivr, voicemail, acd, desktop,
                  supervision)
