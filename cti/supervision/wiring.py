"""Plugs the supervision pages and their APIs into the web application; each page module adds one line."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiohttp import web

from cti.acd.service import AcdService
from cti.agents.wiring import Desktop
from cti.ami import AmiClient
from cti.db import Database
from cti.ivr.service import IvrService
from cti.prompts import PromptStore
from cti.settings import Settings
from cti.state import StateBackend
from cti.supervision import ivr_pages
from cti.supervision.voice_prompts import wiring as voice_prompts
from cti.supervision.voice_prompts.schedule import stop_schedule
from cti.supervision.wallboard import add_routes as add_wallboard_routes
from cti.supervision.wallboard_feed import WallboardFeed

SUPERVISION_KEY: web.AppKey[Supervision] = web.AppKey("supervision")


@dataclass
class Supervision:
    """What the supervision pages work on; built once by ``cti.app``."""

    settings: Settings
    db: Database
    state: StateBackend
    ami: AmiClient
    prompts: PromptStore
    ivr: IvrService
    acd: AcdService
    desktop: Desktop
    wallboard: WallboardFeed = field(init=False)
    prompt_schedule: asyncio.Task[None] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.wallboard = WallboardFeed(self.acd, self.db, self.state, self.settings.supervision)

    async def start(self) -> None:
        """Background work of the pages (the wallboard's feed...), started after the ACD."""
        await self.wallboard.start()
        self.prompt_schedule = voice_prompts.start_prompt_schedule(self)

    async def stop(self) -> None:
        await self.wallboard.stop()
        if self.prompt_schedule is not None:
            await stop_schedule(self.prompt_schedule)


def add_supervision_routes(app: web.Application, supervision: Supervision) -> None:
    app[SUPERVISION_KEY] = supervision
    add_wallboard_routes(app, supervision)  # and the reports, /metrics, /api/openapi.json
    voice_prompts.add_routes(app, supervision)
    ivr_pages.add_routes(app, supervision.ivr, supervision.ami, supervision.settings.asterisk)
