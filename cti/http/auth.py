"""Every route is authenticated and declares the roles it admits; a route that declares none is refused.

Failing closed means a new route someone forgot to annotate is unreachable rather than public.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal, TypeVar

from aiohttp import web

from cti.http.signed_urls import accepts_signed_urls, verify

Role = Literal["admin", "supervisor", "agent"]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
H = TypeVar("H", bound=Callable[..., Any])
ROLES_ATTRIBUTE = "_cti_roles"
ROLE_KEY: web.AppKey[Mapping[str, str]] = web.AppKey("cti_role_of_token")
REQUEST_ROLE = web.RequestKey("cti_role", str)
SIGNING_KEY: web.AppKey[bytes] = web.AppKey("cti_url_signing_key")


def requires(*roles: Role) -> Callable[[H], H]:
    """Declare which roles may call a handler (``@requires("admin", "supervisor")``)."""

    def mark(handler: H) -> H:
        setattr(handler, ROLES_ATTRIBUTE, frozenset(roles))
        return handler

    return mark


def declared_roles(handler: object) -> frozenset[str] | None:
    return getattr(handler, ROLES_ATTRIBUTE, None)


def role_for_token(tokens: Mapping[str, str], presented: str) -> str | None:
    """Constant-time comparison against every configured token."""
    found = None
    for token, role in tokens.items():
        if hmac.compare_digest(token.encode(), presented.encode()):
            found = role
    return found


def bearer_token(request: web.Request) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    roles = declared_roles(request.match_info.handler)
    if roles is None:
        if isinstance(request.match_info.http_exception, web.HTTPException):
            raise request.match_info.http_exception  # 404/405 for unknown routes
        raise web.HTTPForbidden(reason="route declares no roles")
    role = role_for_token(request.app[ROLE_KEY], bearer_token(request))
    if role is None and _signed_url_ok(request):
        return await handler(request)
    if role is None:
        raise web.HTTPUnauthorized(headers={"WWW-Authenticate": "Bearer"})
    if role not in roles:
        raise web.HTTPForbidden(reason=f"role {role} may not use this route")
    request[REQUEST_ROLE] = role
    return await handler(request)


def _signed_url_ok(request: web.Request) -> bool:
    """A GET on a route that admits signed URLs, with a valid unexpired signature for this very path."""
    if request.method not in ("GET", "HEAD") or not accepts_signed_urls(request.match_info.handler):
        return False
    query = request.query
    return verify(request.app[SIGNING_KEY], request.path, query.get("expires", ""), query.get("signature", ""))
