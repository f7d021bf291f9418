"""The voice prompts' part of the supervision screen: its routes, and its background task."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from aiohttp import web

from cti.prompts import load_catalog
from cti.supervision.voice_prompts.http import add_api_routes
from cti.supervision.voice_prompts.library import PromptLibrary
from cti.supervision.voice_prompts.page import add_page_route
from cti.supervision.voice_prompts.schedule import start_schedule

if TYPE_CHECKING:
    from cti.supervision.wiring import Supervision


def library_for(supervision: Supervision) -> PromptLibrary:
    """On the server's prompt folder and clock (the one calls are handled at). Holds no state of its own:
    the routes and the background task may each have one."""
    return PromptLibrary(supervision.db, supervision.prompts, load_catalog(), supervision.ivr.clock)


def add_routes(app: web.Application, supervision: Supervision) -> None:
    add_api_routes(app, library_for(supervision))
    add_page_route(app)


def start_prompt_schedule(supervision: Supervision) -> asyncio.Task[None]:
    """Scheduled activations take effect for calls even while nobody has the page open."""
    return start_schedule(library_for(supervision))
