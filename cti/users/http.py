"""Logging in and out (a form for browsers, a JSON endpoint for other clients), who am I, and the admins'
users API.

A browser login sets the ``cti_session`` cookie (HttpOnly, SameSite=Strict, Secure over https); other clients
get the session token and send it as ``Authorization: Bearer``. A refusal never says whether the username
exists, nor does the 429 of too many failed logins (``cti.http.ratelimit``). Changing what a session carries
(role, agent, active) or the password ends that user's sessions. With the database or the shared state out of
reach a login answers 503 "try again in a moment" (the form in the reader's language), never a 500.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from aiohttp import web
from yarl import URL

from cti.db import DatabaseUnavailable, unavailable_raised
from cti.http.auth import (
    ALL_ROLES,
    SESSION_COOKIE,
    SESSIONS_KEY,
    bearer_token,
    public,
    requires,
    same_origin,
)
from cti.http.bodies import BodyInvalid, json_object
from cti.http.client_address import client_address
from cti.http.errors import answers
from cti.http.identity import identity_of
from cti.http.ratelimit import LIMITER_KEY, LoginThrottled
from cti.safe_text import unstorable_text
from cti.state import StateError
from cti.users.sessions import Session
from cti.users.store import UPDATABLE, User, UserExists, UserInvalid, UserNotFound, UserStore
from cti.web import render

log = logging.getLogger(__name__)

USERS_KEY: web.AppKey[UserStore] = web.AppKey("cti_users", UserStore)
AGENT_HOME = "/agent"
OTHERS_HOME = "/supervision/wallboard"  # supervisors and admins land on the live wallboard
NOT_AFTER_LOGIN = ("/login", "/logout")
MAX_FIELD = 1024
SESSION_FIELDS = ("role", "agent_id", "active")
RETRY_AFTER_S = 5  # a 503 login: the database or the shared state is out of reach, usually not for long
UNAVAILABLE = "auth.unavailable"


def add_routes(app: web.Application, users: UserStore) -> None:
    """Sessions come from the app (``SESSIONS_KEY``, set by ``make_web_app``)."""
    app[USERS_KEY] = users
    app.router.add_get("/login", login_form)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
    app.router.add_post("/api/auth/session", open_session)
    app.router.add_delete("/api/auth/session", close_session)
    app.router.add_get("/api/auth/me", me)
    app.router.add_get("/api/users", list_users)
    app.router.add_post("/api/users", create_user)
    app.router.add_get("/api/users/{id}", get_user)
    app.router.add_patch("/api/users/{id}", update_user)
    app.router.add_delete("/api/users/{id}", delete_user)
    app.router.add_post("/api/users/{id}/password", set_password)


# --- browser login -----------------------------------------------------------------------------------


def safe_next(value: str) -> str | None:
    """A path on this very site (``/x``), never ``//host``, ``/\\host`` or a URL: no open redirect."""
    if not value.startswith("/") or value.startswith("//") or "\\" in value:
        return None
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in value):
        return None
    try:
        url = URL(value)
    except ValueError:
        return None
    if url.is_absolute() or url.path in NOT_AFTER_LOGIN:
        return None
    return value


def landing(next_path: str, role: str) -> str:
    """Where a login leads: the page asked for, else the agent desktop for agents, else who-am-I."""
    return safe_next(next_path) or (AGENT_HOME if role == "agent" else OTHERS_HOME)


def login_page(request: web.Request, *, status: int = 200, error: str | None = None, username: str = "",
               next_path: str = "", minutes: int = 0) -> web.Response:
    """``minutes``: how long a throttled login waits (the ``login.throttled`` message says it)."""
    return render(request, "login.html", status=status, error=error, username=username,
                  next=safe_next(next_path) or "", minutes=minutes)


@public
async def login_form(request: web.Request) -> web.StreamResponse:
    return login_page(request, next_path=request.query.get("next", ""))


@public
async def login(request: web.Request) -> web.StreamResponse:
    """303 to where the user was going, with the session cookie; 401 and the form again when refused, 429 after
    too many failed logins."""
    if not same_origin(request, required=False):
        return login_page(request, status=403, error="login.forbidden")
    form = await request.post()
    username, password, next_path = (_text(form.get(name)) for name in ("username", "password", "next"))
    try:
        user = await _authenticate(request, username, password)
    except LoginThrottled as exc:
        page = login_page(request, status=429, error="login.throttled", username=username[:64],
                          next_path=next_path, minutes=math.ceil(exc.retry_after_s / 60))
        page.headers["Retry-After"] = str(exc.retry_after_s)
        return page
    except DatabaseUnavailable:
        return _unavailable_page(request, username, next_path)
    if user is None:
        log.warning("login refused for %r from %s", username[:64], client_address(request))
        return login_page(request, status=401, error="login.failed", username=username[:64], next_path=next_path)
    try:
        token, _session = await request.app[SESSIONS_KEY].create(user)
    except StateError:
        return _unavailable_page(request, username, next_path)
    response = web.Response(status=303, headers={"Location": landing(next_path, user.role)})
    _set_cookie(request, response, token)
    return response


def _unavailable_page(request: web.Request, username: str, next_path: str) -> web.Response:
    page = login_page(request, status=503, error="login.unavailable", username=username[:64], next_path=next_path)
    page.headers["Retry-After"] = str(RETRY_AFTER_S)
    return page


@public
async def logout(request: web.Request) -> web.StreamResponse:
    """Ends the session (cookie or Bearer) if there is one, and clears the cookie either way."""
    if not same_origin(request, required=False):
        raise web.HTTPForbidden(reason="logout from another origin")
    token = request.cookies.get(SESSION_COOKIE) or bearer_token(request)
    await _end(request, token)
    response = web.Response(status=303, headers={"Location": "/login"})
    response.del_cookie(SESSION_COOKIE, path="/", samesite="Strict", httponly=True, secure=request.secure)
    return response


async def _authenticate(request: web.Request, username: str, password: str) -> User | None:
    """The password check behind the failed-login limits: over them, ``LoginThrottled`` is raised before
    the password is even looked at, whether the username exists or not."""
    limiter = request.app[LIMITER_KEY]
    attempt = await limiter.begin(username, client_address(request))
    try:
        with unavailable_raised():
            user = await request.app[USERS_KEY].authenticate(username, password)
    except DatabaseUnavailable as exc:
        log.warning("login of %r not possible: the database is unavailable (%s)", username[:64], exc)
        raise
    if user is not None:
        await limiter.succeeded(attempt)
    return user


def _set_cookie(request: web.Request, response: web.StreamResponse, token: str) -> None:
    response.set_cookie(SESSION_COOKIE, token, max_age=int(request.app[SESSIONS_KEY].ttl_s), path="/",
                        httponly=True, samesite="Strict", secure=request.secure)


async def _end(request: web.Request, token: str) -> None:
    try:
        await request.app[SESSIONS_KEY].delete(token)
    except StateError:
        log.warning("logout: the session store is unavailable; the session will expire on its own")


def _text(value: Any) -> str:
    """A form field as text, capped (a file upload or a huge field is no username nor password); text no
    account can hold (NUL, unpaired surrogates) is no username either, rather than a database error."""
    if not isinstance(value, str) or len(value) > MAX_FIELD or unstorable_text(value) is not None:
        return ""
    return value


# --- other clients -----------------------------------------------------------------------------------

auth_errors = answers((BodyInvalid, 400))


@public
@auth_errors
async def open_session(request: web.Request) -> web.StreamResponse:
    """``{username, password}`` -> the session token to send as ``Authorization: Bearer``; 401 when refused,
    429 with ``Retry-After`` after too many failed logins (docs/SECURITY.md)."""
    if not same_origin(request, required=False):
        raise web.HTTPForbidden(reason="session request from another origin")
    body = await json_object(request, ("username", "password"))
    username, password = _text(body.get("username")), _text(body.get("password"))
    try:
        user = await _authenticate(request, username, password)
    except LoginThrottled as exc:
        return web.json_response({"error": exc.code, "message": str(exc), "retry_after_s": exc.retry_after_s},
                                 status=429, headers={"Retry-After": str(exc.retry_after_s)})
    except DatabaseUnavailable:
        return _unavailable_json("the user database is unavailable; try again in a moment")
    if user is None:
        log.warning("session refused for %r from %s", username[:64], client_address(request))
        return web.json_response({"error": "auth.failed", "message": "wrong username or password"}, status=401)
    try:
        token, session = await request.app[SESSIONS_KEY].create(user)
    except StateError:
        return _unavailable_json("the session store is unavailable; try again in a moment")
    return web.json_response(_session_json(token, session))


def _unavailable_json(message: str) -> web.Response:
    return web.json_response({"error": UNAVAILABLE, "message": message, "retry_after_s": RETRY_AFTER_S},
                             status=503, headers={"Retry-After": str(RETRY_AFTER_S)})


def _session_json(token: str, session: Session) -> dict[str, Any]:
    return {"token": token, "csrf": session.csrf, "expires_at": session.expires_at, "role": session.role,
            "username": session.username, "agent_id": session.agent_id}


@requires(*ALL_ROLES)
async def close_session(request: web.Request) -> web.StreamResponse:
    """Ends the caller's own session (an API token is not a session: nothing to end)."""
    identity = identity_of(request)
    if identity.via == "session-token":
        await _end(request, bearer_token(request))
    response = web.Response(status=204)
    if identity.via == "session-cookie":
        await _end(request, request.cookies.get(SESSION_COOKIE, ""))
        response.del_cookie(SESSION_COOKIE, path="/", samesite="Strict", httponly=True, secure=request.secure)
    return response


@requires(*ALL_ROLES)
async def me(request: web.Request) -> web.StreamResponse:
    identity = identity_of(request)
    return web.json_response({
        "role": identity.role, "via": identity.via, "user_id": identity.user_id, "username": identity.username,
        "agent_id": identity.agent_id, "language": identity.language, "csrf": identity.csrf,
    })


# --- users (admins) ----------------------------------------------------------------------------------

users_errors = answers((UserInvalid, 422), (UserNotFound, 404), (UserExists, 409), (BodyInvalid, 400))
CREATE_FIELDS = ("username", "password", "role", "display_name", "agent_id", "language", "active")


def _user_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:  # "²" is a digit to isdigit(), not to int()
        raise UserNotFound(f"no user {raw!r}")
    return int(raw)


@requires("admin")
@users_errors
async def list_users(request: web.Request) -> web.StreamResponse:
    return web.json_response({"users": [user.as_json() for user in await request.app[USERS_KEY].list()]})


@requires("admin")
@users_errors
async def create_user(request: web.Request) -> web.StreamResponse:
    body = await json_object(request, CREATE_FIELDS)
    missing = [name for name in ("username", "password", "role") if name not in body]
    if missing:
        raise UserInvalid([f"{name}: required" for name in missing])
    user = await request.app[USERS_KEY].create(**body)
    return web.json_response(user.as_json(), status=201)


@requires("admin")
@users_errors
async def get_user(request: web.Request) -> web.StreamResponse:
    return web.json_response((await request.app[USERS_KEY].get(_user_id(request))).as_json())


@requires("admin")
@users_errors
async def update_user(request: web.Request) -> web.StreamResponse:
    """The fields given change (``display_name``, ``role``, ``agent_id``, ``language``, ``active``)."""
    user_id = _user_id(request)
    body = await json_object(request, UPDATABLE)
    store = request.app[USERS_KEY]
    before = await store.get(user_id)
    after = await store.update(user_id, **body)
    if any(getattr(before, name) != getattr(after, name) for name in SESSION_FIELDS):
        await _end_sessions(request, after)
    return web.json_response(after.as_json())


@requires("admin")
@users_errors
async def delete_user(request: web.Request) -> web.StreamResponse:
    user = await request.app[USERS_KEY].get(_user_id(request))
    await request.app[USERS_KEY].delete(user.id)
    await _end_sessions(request, user)
    return web.Response(status=204)


@requires("admin")
@users_errors
async def set_password(request: web.Request) -> web.StreamResponse:
    body = await json_object(request, ("password",))
    user = await request.app[USERS_KEY].set_password(_user_id(request), body.get("password", ""))
    await _end_sessions(request, user)
    return web.Response(status=204)


async def _end_sessions(request: web.Request, user: User) -> None:
    """What the sessions carry is stale (or the account gone): its user logs in again."""
    try:
        ended = await request.app[SESSIONS_KEY].delete_for_user(user.id)
    except StateError:
        log.error("user %s changed but the session store is unavailable: its sessions live on until they expire",
                  user.username)
        return
    log.info("user %s: %d session(s) ended", user.username, ended)
