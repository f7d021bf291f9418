"""Every route is authenticated and declares the roles it admits; a route that declares none is refused.

Failing closed means a new route someone forgot to annotate is unreachable rather than public. The few routes
anyone may reach (the login form, static files) say so with ``@public``, which is not the same as declaring
no roles.

Who calls is resolved in this order: a Bearer API token (``[security] api_tokens``, refused past its optional
``expires``), a Bearer session token (``POST /api/auth/session``), the ``cti_session`` cookie of a browser
login. A cookie is sent by the browser whatever page made the request, so a cookie-authenticated request must
also prove it comes from our own pages: an unsafe method carries the session's CSRF token in ``X-CSRF-Token``,
a websocket upgrade comes from our own origin. Details in docs/SECURITY.md.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal, TypeVar

from aiohttp import web
from yarl import URL

from cti.http.identity import IDENTITY, Identity
from cti.http.signed_urls import accepts_signed_urls, verify
from cti.state import StateError
from cti.users.sessions import SessionStore

log = logging.getLogger(__name__)

Role = Literal["admin", "supervisor", "agent"]
ALL_ROLES: tuple[Role, ...] = ("admin", "supervisor", "agent")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
H = TypeVar("H", bound=Callable[..., Any])
ROLES_ATTRIBUTE = "_cti_roles"
PUBLIC_ATTRIBUTE = "_cti_public"
PAGE_ATTRIBUTE = "_cti_page"
ROLE_KEY: web.AppKey[Mapping[str, str]] = web.AppKey("cti_role_of_token")
TOKEN_EXPIRY_KEY: web.AppKey[Mapping[str, float]] = web.AppKey("cti_token_expiry")  # token -> POSIX time
SESSIONS_KEY: web.AppKey[SessionStore] = web.AppKey("cti_sessions", SessionStore)
REQUEST_ROLE = web.RequestKey("cti_role", str)
SIGNING_KEY: web.AppKey[bytes] = web.AppKey("cti_url_signing_key")
SESSION_COOKIE = "cti_session"
CSRF_HEADER = "X-CSRF-Token"
LOGIN_PATH = "/login"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def requires(*roles: Role) -> Callable[[H], H]:
    """Declare which roles may call a handler (``@requires("admin", "supervisor")``)."""

    def mark(handler: H) -> H:
        setattr(handler, ROLES_ATTRIBUTE, frozenset(roles))
        return handler

    return mark


def public(handler: H) -> H:
    """Mark a handler anyone may call, logged in or not (the login form, static files): keep them few."""
    if declared_roles(handler):
        raise TypeError(f"{handler.__name__} declares roles: it cannot also be public")
    setattr(handler, PUBLIC_ATTRIBUTE, True)
    return handler


def page(handler: H) -> H:
    """Mark an HTML page: an anonymous GET is redirected to the login form instead of answering 401."""
    setattr(handler, PAGE_ATTRIBUTE, True)
    return handler


def declared_roles(handler: object) -> frozenset[str] | None:
    return getattr(handler, ROLES_ATTRIBUTE, None)


def is_public(handler: object) -> bool:
    return getattr(handler, PUBLIC_ATTRIBUTE, False) is True


def is_page(handler: object) -> bool:
    return getattr(handler, PAGE_ATTRIBUTE, False) is True


def role_for_token(tokens: Mapping[str, str], presented: str) -> str | None:
    """Constant-time comparison against every configured token."""
    found = matching_token(tokens, presented)
    return tokens[found] if found is not None else None


def matching_token(tokens: Mapping[str, str], presented: str) -> str | None:
    """The configured token equal to ``presented``; every one is compared, in constant time each."""
    found = None
    for token in tokens:
        if hmac.compare_digest(token.encode(), presented.encode()):
            found = token
    return found


def api_token_identity(app: web.Application, token: str) -> Identity | None:
    """The identity a configured token gives, or None once it is past its ``expires``."""
    role = app[ROLE_KEY][token]
    expires = app.get(TOKEN_EXPIRY_KEY, {}).get(token)
    if expires is not None and expires <= time.time():
        log.warning("an expired API token (%s..., role %s) was refused", token[:4], role)
        return None
    return Identity(role=role, via="api-token")


def bearer_token(request: web.Request) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    target = request.match_info.handler
    if is_public(target):
        return await handler(request)
    roles = declared_roles(target)
    if roles is None:
        if isinstance(request.match_info.http_exception, web.HTTPException):
            raise request.match_info.http_exception  # 404/405 for unknown routes
        raise web.HTTPForbidden(reason="route declares no roles")
    identity = await resolve_identity(request)
    if identity is None and _signed_url_ok(request):
        request[IDENTITY] = Identity(role="", via="signed-url")
        return await handler(request)
    if identity is None:
        raise _anonymous(request, target)
    if identity.role not in roles:
        raise web.HTTPForbidden(reason=f"role {identity.role} may not use this route")
    if identity.via == "session-cookie":
        check_cookie_request(request, identity)
    request[IDENTITY] = identity
    request[REQUEST_ROLE] = identity.role
    return await handler(request)


async def resolve_identity(request: web.Request) -> Identity | None:
    """A Bearer header is authoritative (a wrong one is not rescued by a cookie); else the session cookie."""
    presented = bearer_token(request)
    if presented:
        token = matching_token(request.app[ROLE_KEY], presented)
        if token is not None:
            return api_token_identity(request.app, token)  # an expired API token is no session either
        return await _session(request, presented, "session-token")
    cookie = request.cookies.get(SESSION_COOKIE, "")
    return await _session(request, cookie, "session-cookie") if cookie else None


SessionVia = Literal["session-token", "session-cookie"]


async def _session(request: web.Request, token: str, via: SessionVia) -> Identity | None:
    try:
        session = await request.app[SESSIONS_KEY].session(token)
    except StateError:
        raise web.HTTPServiceUnavailable(reason="the session store is unavailable") from None
    return session.identity(via) if session is not None else None


def check_cookie_request(request: web.Request, identity: Identity) -> None:
    """What a cross-site page could make a browser send with our cookie is refused (403)."""
    if request.method in UNSAFE_METHODS:
        presented = request.headers.get(CSRF_HEADER, "")
        if not identity.csrf or not hmac.compare_digest(presented.encode(), identity.csrf.encode()):
            raise web.HTTPForbidden(reason=f"missing or wrong {CSRF_HEADER} header")
    elif _is_websocket_upgrade(request) and not same_origin(request, required=True):
        raise web.HTTPForbidden(reason="websocket from another origin")


def same_origin(request: web.Request, *, required: bool) -> bool:
    """The ``Origin`` header names this very host and port; an absent header passes unless ``required``."""
    origin = request.headers.get("Origin")
    if origin is None:
        return not required
    try:
        url = URL(origin)
    except ValueError:
        return False
    if not url.host or url.scheme not in DEFAULT_PORTS:
        return False
    return _authority(url.scheme, url.host, url.explicit_port) == _host_authority(request, url.scheme)


def _authority(scheme: str, host: str, port: int | None) -> str:
    """``host[:port]`` lowercase, the scheme's default port left out (``a:443`` over https is ``a``)."""
    return host.lower() if port is None or port == DEFAULT_PORTS[scheme] else f"{host.lower()}:{port}"


def _host_authority(request: web.Request, scheme: str) -> str:
    """The Host header seen with the Origin's scheme: behind a TLS proxy the request itself is plain HTTP."""
    try:
        url = URL(f"{scheme}://{request.host}")
    except ValueError:
        return ""
    return _authority(scheme, url.host or "", url.explicit_port)


def _is_websocket_upgrade(request: web.Request) -> bool:
    return request.method == "GET" and request.headers.get("Upgrade", "").lower() == "websocket"


def _anonymous(request: web.Request, target: object) -> web.HTTPException:
    """A browser opening a page goes to the login form and comes back; an API client gets 401."""
    if is_page(target) and request.method in ("GET", "HEAD"):
        return web.HTTPSeeOther(URL(LOGIN_PATH).with_query(next=request.rel_url.raw_path_qs))
    return web.HTTPUnauthorized(headers={"WWW-Authenticate": "Bearer"})


def _signed_url_ok(request: web.Request) -> bool:
    """A GET on a route that admits signed URLs, with a valid unexpired signature for this very path."""
    if request.method not in ("GET", "HEAD") or not accepts_signed_urls(request.match_info.handler):
        return False
    query = request.query
    return verify(request.app[SIGNING_KEY], request.path, query.get("expires", ""), query.get("signature", ""))
