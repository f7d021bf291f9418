"""Builds the aiohttp application; capability packages add their routes through ``add_routes``."""

from __future__ import annotations

import secrets

from aiohttp import web

from cti.audit.middleware import audit_middleware
from cti.http import status
from cti.http.auth import ROLE_KEY, SESSIONS_KEY, SIGNING_KEY, auth_middleware
from cti.http.status import STATUS_KEY, StatusProvider
from cti.settings import SecuritySettings
from cti.state import InMemoryStateBackend
from cti.users.sessions import SessionStore
from cti.web import static as web_static

MAX_BODY_BYTES = 20 * 1024 * 1024


def make_web_app(
    security: SecuritySettings, status_provider: StatusProvider, sessions: SessionStore | None = None
) -> web.Application:
    """``sessions``: login sessions in the shared state (the server passes its backend's); without one, a
    store of this process only, which is all a test or a single-process tool needs."""
    app = web.Application(middlewares=[auth_middleware, audit_middleware], client_max_size=MAX_BODY_BYTES)
    app[ROLE_KEY] = dict(security.api_tokens)
    # a configured key keeps signed URLs valid across restarts and nodes; else one per process
    app[SIGNING_KEY] = security.url_signing_key.get_secret_value().encode() or secrets.token_bytes(32)
    app[SESSIONS_KEY] = sessions or SessionStore(InMemoryStateBackend(), security.session_ttl_s)
    app[STATUS_KEY] = status_provider
    status.add_routes(app)
    web_static.add_routes(app)
    return app
