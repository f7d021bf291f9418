"""Query strings and path parameters no database can store (NUL, unpaired surrogates) are refused (400).

JSON and YAML bodies are checked where they are read (``cti.http.bodies``, ``cti.ivr.documents``); the
query string and the path reach handlers through ``request.query`` and ``match_info`` instead, on dozens of
routes (searches, filters, names in paths). Checking them once here keeps a ``?q=%00`` from becoming a 500
deep in a database driver on any of them, present or future.
"""

from __future__ import annotations

from aiohttp import web

from cti.http.auth import Handler
from cti.safe_text import unstorable_text

QUERY_INVALID = "http.query_invalid"
PATH_INVALID = "http.path_invalid"


@web.middleware
async def input_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Runs after the authentication: an anonymous caller learns nothing more than 401."""
    problem = unstorable_text([*request.query.keys(), *request.query.values()])
    if problem:
        return _refused(QUERY_INVALID, f"the query string contains {problem}")
    problem = unstorable_text(list(request.match_info.values()))
    if problem:
        return _refused(PATH_INVALID, f"the path contains {problem}")
    return await handler(request)


def _refused(code: str, message: str) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=400)
