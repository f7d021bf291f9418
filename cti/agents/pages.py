"""The agent desktop page, ``GET /agent``: the shell the desktop script fills from the agent's websocket."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from cti.agents.desk import AgentDesk
from cti.agents.messages import MESSAGES
from cti.agents.ws import DESK_KEY
from cti.http.auth import page, requires
from cti.http.identity import identity_of
from cti.web.i18n import add_template_dir, pick_language, register_messages, render, translator
from cti.web.static import add_static_dir

HERE = Path(__file__).parent
PAUSE_REASONS = ("break", "lunch", "training", "meeting", "admin")

register_messages(MESSAGES)
add_template_dir(HERE / "templates")
add_static_dir("agents", HERE / "static")


def script_messages(lang: str) -> dict[str, str]:
    """The texts the desktop script shows, in the page's language."""
    t = translator(lang)
    return {key: t(key) for key in MESSAGES}


@page
@requires("agent", "supervisor", "admin")
async def agent_page(request: web.Request) -> web.StreamResponse:
    who = identity_of(request)
    desk: AgentDesk = request.app[DESK_KEY]
    lang = pick_language(request, who)
    agent = desk.acd.agents.get(who.agent_id or "")
    config = {"language": lang, "messages": script_messages(lang), "outcomes": list(desk.outcomes),
              "agent_id": who.agent_id}
    return render(request, "agent.html", agent_name=agent.name if agent else (who.username or ""),
                  pause_reasons=PAUSE_REASONS, config=config)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/agent", agent_page)
