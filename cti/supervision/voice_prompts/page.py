"""``GET /supervision/prompts``: the page's frame and its configuration; ``prompts.js`` fills it from the API."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from cti.http.auth import page, requires
from cti.http.identity import identity_of
from cti.prompts import LANGUAGES
from cti.supervision.pages import SUPERVISORS, render_page
from cti.supervision.voice_prompts.http import PROMPTS_KEY
from cti.supervision.voice_prompts.library import PromptLibrary
from cti.supervision.voice_prompts.messages import MESSAGES
from cti.web.i18n import pick_language, register_messages, translator

register_messages(MESSAGES)


def page_config(library: PromptLibrary, lang: str) -> dict[str, Any]:
    """What the script needs besides the API: its texts in the page's language, the names, the limits."""
    t = translator(lang)
    keys = [*MESSAGES, "sup.error", "sup.loading", "lang.en", "lang.fr"]
    limits = library.limits
    return {"language": lang, "languages": list(LANGUAGES), "messages": {key: t(key) for key in keys},
            "catalog": library.catalog, "max_bytes": limits.max_bytes, "max_seconds": limits.max_seconds,
            "min_seconds": limits.min_seconds, "max_text": limits.max_text}


@page
@requires(*SUPERVISORS)
async def prompts_page(request: web.Request) -> web.StreamResponse:
    library = request.app[PROMPTS_KEY]
    lang = pick_language(request, identity_of(request))
    limits = library.limits
    hint = {"max_mb": f"{limits.max_bytes / 1024 / 1024:g}", "min_s": f"{limits.min_seconds:g}",
            "max_min": f"{limits.max_seconds / 60:g}"}
    return render_page(request, "prompts.html", "prompts", config=page_config(library, lang), hint=hint,
                       names=sorted(library.catalog))


def add_page_route(app: web.Application) -> None:
    app.router.add_get("/supervision/prompts", prompts_page)
