"""Logging in and out in a browser and from other clients, who-am-I, and the admins' users API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from cti.db import Database
from cti.http.app import make_web_app
from cti.http.auth import declared_roles, is_public
from cti.settings import SecuritySettings
from cti.state import InMemoryStateBackend
from cti.users import http as users_http
from cti.users.sessions import SessionStore
from cti.users.store import User, UserStore

ADMIN_TOKEN = "a" * 32
PASSWORD = "a long enough password"
Client = TestClient[web.Request, web.Application]
PUBLIC = {("GET", "/login"), ("POST", "/login"), ("POST", "/logout"), ("POST", "/api/auth/session")}


async def _status() -> dict[str, Any]:
    return {"healthy": True}


@dataclass
class Env:
    client: Client
    store: UserStore
    admin: User
    supervisor: User
    agent: User

    async def session(self, username: str) -> tuple[str, str]:
        """(token, csrf) of a fresh session of ``username``."""
        response = await self.client.post("/api/auth/session", json={"username": username, "password": PASSWORD})
        body = await response.json()
        return body["token"], body["csrf"]

    async def call(self, method: str, path: str, token: str = ADMIN_TOKEN, **kwargs: Any) -> tuple[int, Any]:
        response = await self.client.request(method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs)
        is_json = response.content_type == "application/json"
        return response.status, await response.json() if is_json else await response.text()


@pytest.fixture
async def env(database: Database) -> AsyncIterator[Env]:
    store = UserStore(database)
    admin = await store.create("root", PASSWORD, "admin")
    supervisor = await store.create("sam", PASSWORD, "supervisor", language="en")
    agent = await store.create("alice", PASSWORD, "agent", agent_id="alice", language="fr")
    sessions = SessionStore(InMemoryStateBackend(), 3600)
    app = make_web_app(SecuritySettings(api_tokens={ADMIN_TOKEN: "admin"}), _status, sessions)
    users_http.add_routes(app, store)
    async with TestClient(TestServer(app)) as client:
        yield Env(client, store, admin, supervisor, agent)


async def _form_login(client: Client, username: str, password: str, next_path: str = "", **headers: str) -> Any:
    return await client.post("/login", data={"username": username, "password": password, "next": next_path},
                             allow_redirects=False, headers=headers)


# --- the login form ------------------------------------------------------------------------------------


async def test_login_form_in_english_and_french(env: Env) -> None:
    english = await env.client.get("/login?next=/agent")
    html = await english.text()
    assert english.status == 200 and english.content_type == "text/html"
    assert '<html lang="en">' in html and 'name="password"' in html and 'value="/agent"' in html
    assert "Content-Security-Policy" in english.headers
    french = await env.client.get("/login", headers={"Accept-Language": "fr-FR,fr;q=0.9,en;q=0.5"})
    assert '<html lang="fr">' in await french.text()
    assert "Mot de passe" in await french.text()


async def test_wrong_password_shows_the_form_again_with_401(env: Env) -> None:
    for username in ("alice", "nobody"):
        response = await _form_login(env.client, username, "wrong password!", "/agent")
        html = await response.text()
        assert response.status == 401
        assert "Wrong username or password." in html and 'role="alert"' in html
        assert f'value="{username}"' in html and 'value="/agent"' in html
        assert "Set-Cookie" not in response.headers


async def test_login_sets_a_strict_httponly_cookie_and_redirects(env: Env) -> None:
    response = await _form_login(env.client, "ALICE", PASSWORD)
    assert response.status == 303
    assert response.headers["Location"] == "/agent"
    cookie = response.cookies["cti_session"]
    assert cookie["httponly"] is True and cookie["samesite"] == "Strict" and cookie["path"] == "/"
    assert not cookie["secure"]  # plain http in tests; https sets it
    assert cookie["max-age"] == "3600"
    me = await env.client.get("/api/auth/me", headers={"Cookie": f"cti_session={cookie.value}"})
    body = await me.json()
    assert (body["username"], body["role"], body["agent_id"], body["via"]) == ("alice", "agent", "alice",
                                                                               "session-cookie")
    assert body["csrf"]


@pytest.mark.parametrize(("username", "landing"),
                         [("root", "/supervision/wallboard"), ("sam", "/supervision/wallboard")])
async def test_others_land_on_who_am_i(env: Env, username: str, landing: str) -> None:
    assert (await _form_login(env.client, username, PASSWORD)).headers["Location"] == landing


@pytest.mark.parametrize(("next_path", "landing"), [
    ("/agent?tab=calls", "/agent?tab=calls"),
    ("/api/tickets", "/api/tickets"),
    ("//evil.example/x", "/agent"),
    ("/\\evil.example", "/agent"),
    ("https://evil.example/", "/agent"),
    ("javascript:alert(1)", "/agent"),
    ("/ok\r\nSet-Cookie: x=1", "/agent"),
    ("/login", "/agent"),
    ("", "/agent"),
])
async def test_next_never_leaves_the_site(env: Env, next_path: str, landing: str) -> None:
    response = await _form_login(env.client, "alice", PASSWORD, next_path)
    assert (response.status, response.headers["Location"]) == (303, landing)


async def test_a_login_posted_from_another_site_is_refused(env: Env) -> None:
    response = await _form_login(env.client, "alice", PASSWORD, Origin="https://evil.example")
    assert response.status == 403 and "Set-Cookie" not in response.headers
    ours = f"http://{env.client.server.host}:{env.client.server.port}"
    assert (await _form_login(env.client, "alice", PASSWORD, Origin=ours)).status == 303


async def test_inactive_user_cannot_log_in(env: Env) -> None:
    await env.store.update(env.agent.id, active=False)
    assert (await _form_login(env.client, "alice", PASSWORD)).status == 401


async def test_logout_ends_the_session_and_clears_the_cookie(env: Env) -> None:
    token = (await _form_login(env.client, "alice", PASSWORD)).cookies["cti_session"].value
    cookie = {"Cookie": f"cti_session={token}"}
    assert (await env.client.get("/api/auth/me", headers=cookie)).status == 200
    response = await env.client.post("/logout", headers=cookie, allow_redirects=False)
    assert (response.status, response.headers["Location"]) == (303, "/login")
    assert response.cookies["cti_session"].value == "" and response.cookies["cti_session"]["max-age"] == "0"
    assert (await env.client.get("/api/auth/me", headers=cookie)).status == 401
    assert (await env.client.post("/logout", allow_redirects=False)).status == 303  # nothing to end: fine


# --- other clients -------------------------------------------------------------------------------------


async def test_api_session_for_non_browser_clients(env: Env) -> None:
    response = await env.client.post("/api/auth/session", json={"username": "alice", "password": PASSWORD})
    body = await response.json()
    assert response.status == 200
    assert set(body) == {"token", "csrf", "expires_at", "role", "username", "agent_id"}
    assert (body["role"], body["username"], body["agent_id"]) == ("agent", "alice", "alice")
    status, me = await env.call("GET", "/api/auth/me", token=body["token"])
    assert (status, me["via"], me["user_id"], me["language"]) == (200, "session-token", env.agent.id, "fr")
    assert (await env.call("DELETE", "/api/auth/session", token=body["token"]))[0] == 204
    assert (await env.call("GET", "/api/auth/me", token=body["token"]))[0] == 401


@pytest.mark.parametrize("body", [{"username": "alice", "password": "wrong password"},
                                  {"username": "nobody", "password": PASSWORD}])
async def test_api_session_refusal_says_nothing_more(env: Env, body: dict[str, str]) -> None:
    response = await env.client.post("/api/auth/session", json=body)
    assert (response.status, await response.json()) == (
        401, {"error": "auth.failed", "message": "wrong username or password"})


async def test_api_session_bad_body_is_400(env: Env) -> None:
    response = await env.client.post("/api/auth/session", json={"username": "alice", "password": PASSWORD, "x": 1})
    assert response.status == 400
    assert (await env.client.post("/api/auth/session", data=b"not json")).status == 400


async def test_me_with_an_api_token(env: Env) -> None:
    status, body = await env.call("GET", "/api/auth/me")
    assert (status, body["role"], body["via"], body["username"]) == (200, "admin", "api-token", None)


# --- users API -----------------------------------------------------------------------------------------


async def test_users_api_is_for_admins_only(env: Env) -> None:
    for username in ("alice", "sam"):
        token, _ = await env.session(username)
        for method, path in (("GET", "/api/users"), ("POST", "/api/users"), ("GET", f"/api/users/{env.admin.id}"),
                             ("PATCH", f"/api/users/{env.admin.id}"), ("DELETE", f"/api/users/{env.admin.id}"),
                             ("POST", f"/api/users/{env.admin.id}/password")):
            assert (await env.call(method, path, token=token))[0] == 403, (username, method, path)
    token, _ = await env.session("root")
    assert (await env.call("GET", "/api/users", token=token))[0] == 200


async def test_users_api_never_returns_hashes(env: Env) -> None:
    status, body = await env.call("GET", "/api/users")
    assert status == 200
    assert [user["username"] for user in body["users"]] == ["alice", "root", "sam"]
    assert "scrypt" not in str(body) and all("password_hash" not in user for user in body["users"])


async def test_create_get_update_delete(env: Env) -> None:
    status, bob = await env.call("POST", "/api/users", json={"username": "Bob", "password": PASSWORD,
                                                            "role": "agent", "agent_id": "bob", "language": "en"})
    assert (status, bob["username"], bob["agent_id"], bob["active"]) == (201, "bob", "bob", True)
    assert "password" not in bob and "password_hash" not in bob
    assert (await env.call("GET", f"/api/users/{bob['id']}"))[1] == bob
    status, changed = await env.call("PATCH", f"/api/users/{bob['id']}", json={"display_name": "Bob B.",
                                                                               "agent_id": None})
    assert (status, changed["display_name"], changed["agent_id"]) == (200, "Bob B.", None)
    assert (await env.call("DELETE", f"/api/users/{bob['id']}"))[0] == 204
    assert (await env.call("GET", f"/api/users/{bob['id']}"))[0] == 404


async def test_users_api_refusals(env: Env) -> None:
    status, body = await env.call("POST", "/api/users", json={"username": "x", "password": "short", "role": "root"})
    assert status == 422 and body["error"] == "users.invalid" and len(body["errors"]) == 3
    status, body = await env.call("POST", "/api/users", json={"username": "bob"})
    assert (status, body["errors"]) == (422, ["password: required", "role: required"])
    status, body = await env.call("POST", "/api/users", json={"username": "alice", "password": PASSWORD,
                                                             "role": "agent"})
    assert (status, body["error"]) == (409, "users.exists")
    assert (await env.call("POST", "/api/users", json={"password_hash": "x"}))[0] == 400
    assert (await env.call("PATCH", f"/api/users/{env.agent.id}", json={"username": "eve"}))[0] == 400
    assert (await env.call("PATCH", f"/api/users/{env.agent.id}", json={"active": "yes"}))[0] == 422
    assert (await env.call("GET", "/api/users/abc"))[0] == 404
    assert (await env.call("GET", "/api/users/999999"))[0] == 404


async def test_changing_what_a_session_carries_ends_the_users_sessions(env: Env) -> None:
    token, _ = await env.session("alice")
    other, _ = await env.session("sam")
    assert (await env.call("PATCH", f"/api/users/{env.agent.id}", json={"display_name": "A"}))[0] == 200
    assert (await env.call("GET", "/api/auth/me", token=token))[0] == 200  # the name is not in the session
    assert (await env.call("PATCH", f"/api/users/{env.agent.id}", json={"role": "supervisor"}))[0] == 200
    assert (await env.call("GET", "/api/auth/me", token=token))[0] == 401
    assert (await env.call("GET", "/api/auth/me", token=other))[0] == 200


async def test_password_change_ends_sessions_and_checks_the_policy(env: Env) -> None:
    token, _ = await env.session("alice")
    path = f"/api/users/{env.agent.id}/password"
    status, body = await env.call("POST", path, json={"password": "short"})
    assert status == 422 and "at least 10" in body["errors"][0]
    assert (await env.call("POST", path, json={"password": "a brand new password"}))[0] == 204
    assert (await env.call("GET", "/api/auth/me", token=token))[0] == 401
    assert await env.store.authenticate("alice", "a brand new password") is not None


async def test_deactivating_and_deleting_end_sessions(env: Env) -> None:
    token, _ = await env.session("alice")
    assert (await env.call("PATCH", f"/api/users/{env.agent.id}", json={"active": False}))[0] == 200
    assert (await env.call("GET", "/api/auth/me", token=token))[0] == 401
    token, _ = await env.session("sam")
    assert (await env.call("DELETE", f"/api/users/{env.supervisor.id}"))[0] == 204
    assert (await env.call("GET", "/api/auth/me", token=token))[0] == 401


async def test_a_cookie_admin_needs_the_csrf_header_to_change_users(env: Env) -> None:
    token = (await _form_login(env.client, "root", PASSWORD)).cookies["cti_session"].value
    csrf = (await (await env.client.get("/api/auth/me", headers={"Cookie": f"cti_session={token}"})).json())["csrf"]
    body = {"display_name": "Alice"}
    path = f"/api/users/{env.agent.id}"
    refused = await env.client.patch(path, json=body, headers={"Cookie": f"cti_session={token}"})
    assert refused.status == 403
    accepted = await env.client.patch(path, json=body, headers={"Cookie": f"cti_session={token}",
                                                                "X-CSRF-Token": csrf})
    assert accepted.status == 200


def test_every_route_is_public_on_purpose_or_declares_roles(env: Env) -> None:
    routes = {(route.method, route.resource.canonical): route.handler for route in env.client.app.router.routes()
              if route.resource is not None and route.method != "HEAD"}
    assert {key for key, handler in routes.items() if is_public(handler)} == PUBLIC | {("GET", "/static/{path}")}
    users_routes = {key: declared_roles(handler) for key, handler in routes.items() if "/api/users" in key[1]}
    assert len(users_routes) == 6 and set(users_routes.values()) == {frozenset({"admin"})}
    assert declared_roles(routes[("GET", "/api/auth/me")]) == frozenset({"admin", "supervisor", "agent"})

