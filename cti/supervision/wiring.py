"""Plugs the supervision pages and their APIs into the web application; each page module adds one line."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from cti.acd.service import AcdService
from cti.agents.wiring import Desktop
from cti.ami import AmiClient
from cti.db import Database
from cti.ivr.service import IvrService
from cti.prompts import PromptStore
from cti.settings import Settings
from cti.state import StateBackend

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

    async def start(self) -> None:
        """Background work of the pages (the wallboard's feed...), started after the ACD."""

    async def stop(self) -> None: ...


def add_supervision_routes(app: web.Application, supervision: Supervision) -> None:
    app[SUPERVISION_KEY] = supervision
