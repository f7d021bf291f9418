"""HTML pages shared by every screen (login, agent desktop, supervision): layout, texts in EN/FR, static files.

``render(request, "page.html", **context)`` answers a page; a package with pages calls
``add_template_dir(folder)``, ``register_messages({...})`` and ``add_static_dir(prefix, folder)`` once.
"""

from __future__ import annotations

from cti.web.i18n import add_template_dir, pick_language, register_messages, render
from cti.web.static import add_static_dir

__all__ = ["add_static_dir", "add_template_dir", "pick_language", "register_messages", "render"]
