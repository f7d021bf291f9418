"""Static files of the HTML pages (CSS, scripts, images) under ``/static/``, readable without logging in.

The core files are ``/static/<file>``; a package adds its own folder under a prefix of its own
(``add_static_dir("agents", folder)`` serves ``/static/agents/<file>``). Nothing outside a registered folder
is ever served: a path is resolved, then must still lie inside the folder.
"""

from __future__ import annotations

import re
from pathlib import Path

from aiohttp import web

from cti.errors import CtiError
from cti.http.auth import public

CORE_STATIC = Path(__file__).with_name("static")
PREFIX = re.compile(r"^[a-z0-9_-]{1,32}$")
MAX_AGE_S = 300
_folders: dict[str, Path] = {}


class StaticDirInvalid(CtiError):
    code = "web.static_dir_invalid"


def add_static_dir(prefix: str, directory: Path) -> None:
    """Serve ``directory`` at ``/static/<prefix>/``; registering the same folder again changes nothing."""
    if not PREFIX.fullmatch(prefix):
        raise StaticDirInvalid(f"static prefix {prefix!r}: 1 to 32 characters among a-z, 0-9, '_' and '-'")
    folder = Path(directory).resolve()
    if _folders.get(prefix, folder) != folder:
        raise StaticDirInvalid(f"static prefix {prefix!r} already serves {_folders[prefix]}")
    _folders[prefix] = folder


def static_file(path: str) -> Path | None:
    """The file ``/static/<path>`` names, or None (missing, a folder, or outside every static folder)."""
    head, _, rest = path.partition("/")
    folder, relative = (_folders[head], rest) if head in _folders and rest else (CORE_STATIC.resolve(), path)
    try:
        candidate = (folder / relative).resolve()
    except (OSError, ValueError):
        return None
    if not candidate.is_relative_to(folder) or not candidate.is_file():
        return None
    return candidate


@public
async def serve_static(request: web.Request) -> web.StreamResponse:
    found = static_file(request.match_info["path"])
    if found is None:
        raise web.HTTPNotFound()
    headers = {"Cache-Control": f"public, max-age={MAX_AGE_S}", "X-Content-Type-Options": "nosniff"}
    return web.FileResponse(found, headers=headers)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/static/{path:.+}", serve_static)
