"""Builds the aiohttp application; capability packages add their routes through ``add_routes``."""

from __future__ import annotations

import secrets

from aiohttp import web

from cti.http import status
from cti.http.auth import ROLE_KEY, SIGNING_KEY, auth_middleware
from cti.http.status import STATUS_KEY, StatusProvider
from cti.settings import SecuritySettings

MAX_BODY_BYTES = 20 * 1024 * 1024


def make_web_app(security: SecuritySettings, status_provider: StatusProvider) -> web.Application:
    app = web.Application(middlewares=[auth_middleware], client_max_size=MAX_BODY_BYTES)
    app[ROLE_KEY] = dict(security.api_tokens)
    # a configured key keeps signed URLs valid across restarts and nodes; else one per process
    app[SIGNING_KEY] = security.url_signing_key.get_secret_value().encode() or secrets.token_bytes(32)
    app[STATUS_KEY] = status_provider
    status.add_routes(app)
    return app
