"""Builds the aiohttp application; capability packages add their routes through ``add_routes``."""

from __future__ import annotations

import logging
import secrets
import time

from aiohttp import web

from cti.audit.middleware import audit_middleware
from cti.http import status
from cti.http.auth import ROLE_KEY, SESSIONS_KEY, SIGNING_KEY, TOKEN_EXPIRY_KEY, auth_middleware
from cti.http.client_address import TRUSTED_PROXIES_KEY, parse_networks
from cti.http.inputs import input_middleware
from cti.http.ratelimit import LIMITER_KEY, Limits, LoginLimiter
from cti.http.status import STATUS_KEY, StatusProvider
from cti.settings import SecuritySettings
from cti.state import InMemoryStateBackend
from cti.users.sessions import SessionStore
from cti.web import static as web_static

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 20 * 1024 * 1024


def make_web_app(
    security: SecuritySettings, status_provider: StatusProvider, sessions: SessionStore | None = None,
    limiter: LoginLimiter | None = None,
) -> web.Application:
    """``sessions``: login sessions in the shared state (the server passes its backend's); without one, a
    store of this process only, which is all a test or a single-process tool needs. ``limiter``: the failed
    logins' counters, by default in the same state as the sessions (so every node counts the same)."""
    app = web.Application(middlewares=[auth_middleware, input_middleware, audit_middleware],
                          client_max_size=MAX_BODY_BYTES)
    app[ROLE_KEY] = security.token_roles()
    app[TOKEN_EXPIRY_KEY] = {token: when.timestamp() for token, when in security.token_expiry().items()}
    for line in expired_tokens(security, time.time()):
        log.warning("%s", line)
    # a configured key keeps signed URLs valid across restarts and nodes; else one per process
    app[SIGNING_KEY] = security.url_signing_key.get_secret_value().encode() or secrets.token_bytes(32)
    app[SESSIONS_KEY] = sessions or SessionStore(InMemoryStateBackend(), security.session_ttl_s)
    app[LIMITER_KEY] = limiter or LoginLimiter(app[SESSIONS_KEY].state, Limits.of(security))
    app[TRUSTED_PROXIES_KEY] = parse_networks(security.trusted_proxies)
    app[STATUS_KEY] = status_provider
    status.add_routes(app)
    web_static.add_routes(app)
    return app


def expired_tokens(security: SecuritySettings, now: float) -> list[str]:
    """One line per API token already past its ``expires``: logged at start-up (they are refused, and an
    admin should see why a client gets 401) and listed by ``cti check-config``."""
    roles = security.token_roles()
    return [f"API token {token[:4]}... ({roles[token]}) expired on {when.isoformat()}: it is refused"
            for token, when in security.token_expiry().items() if when.timestamp() <= now]
