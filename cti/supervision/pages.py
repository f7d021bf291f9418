"""Shared by the supervision pages: registration of their texts, templates and static files, and `render_page`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web

from cti.http.auth import Role
from cti.supervision.messages import MESSAGES
from cti.web.i18n import add_template_dir, register_messages, render
from cti.web.static import add_static_dir

HERE = Path(__file__).parent
SUPERVISORS: tuple[Role, ...] = ("admin", "supervisor")

register_messages(MESSAGES)
add_template_dir(HERE / "templates")
add_static_dir("supervision", HERE / "static")


def render_page(request: web.Request, template: str, active: str, **context: Any) -> web.Response:
    """A supervision page: ``active`` is its key in the navigation (wallboard, prompts, hours...)."""
    return render(request, template, active=active, **context)
