"""Failed logins are limited per username and per client address, in the shared state, on both login routes.

The limiter counts an attempt before the password is checked and gives the slot back on success, answers 429
with Retry-After (the same for known and unknown usernames), and lets logins through when the state is down.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from cti.db import Database
from cti.http.app import make_web_app
from cti.http.ratelimit import KEY_PREFIX, Limits, LoginLimiter, LoginThrottled, address_bucket, username_digest
from cti.settings import SecuritySettings, SettingsError, load_settings
from cti.state import InMemoryStateBackend, StateUnavailable
from cti.users import http as users_http
from cti.users.sessions import SessionStore
from cti.users.store import UserStore
from tests.plugins.state import FakeClock, StateNodes

PASSWORD = "a long enough password"
WRONG = "not the password!"
LIMITS = Limits(window_s=300, per_user=5, per_address=30)
START = 1_800_000_000.0  # the start of a 300 s window
Client = TestClient[web.Request, web.Application]


async def _status() -> dict[str, Any]:
    return {"healthy": True}


class BrokenState(InMemoryStateBackend):
    """Sessions work, the limiter's counters do not: shows the limiter alone fails open."""

    async def set_if_absent(self, key: str, value: str, ttl: float | None = None) -> bool:
        raise StateUnavailable("counters down")

    async def incr(self, key: str, amount: int = 1) -> int:
        raise StateUnavailable("counters down")


@dataclass
class Env:
    client: Client
    clock: FakeClock
    state: InMemoryStateBackend

    async def form(self, username: str, password: str, **headers: str) -> Any:
        return await self.client.post("/login", data={"username": username, "password": password},
                                      allow_redirects=False, headers=headers)

    async def api(self, username: str, password: str) -> Any:
        return await self.client.post("/api/auth/session", json={"username": username, "password": password})


async def _env(database: Database, limits: Limits = LIMITS, limiter_state: InMemoryStateBackend | None = None,
               security: SecuritySettings | None = None,
               ) -> tuple[TestClient[web.Request, web.Application], FakeClock, InMemoryStateBackend]:
    store = UserStore(database)
    await store.create("alice", PASSWORD, "agent", agent_id="alice")
    await store.create("bob", PASSWORD, "supervisor")
    clock = FakeClock(START)
    state = InMemoryStateBackend(clock=clock)
    sessions = SessionStore(state, 3600, clock=clock)
    limiter = LoginLimiter(limiter_state or state, limits, clock=clock)
    app = make_web_app(security or SecuritySettings(), _status, sessions, limiter)
    users_http.add_routes(app, store)
    return TestClient(TestServer(app)), clock, state


@pytest.fixture
async def env(database: Database) -> AsyncIterator[Env]:
    client, clock, state = await _env(database)
    async with client:
        yield Env(client, clock, state)


# --- per username ----------------------------------------------------------------------------------------


async def test_the_sixth_failure_in_a_window_is_429_even_with_the_right_password(env: Env) -> None:
    for _ in range(LIMITS.per_user):
        assert (await env.form("alice", WRONG)).status == 401
    refused = await env.form("alice", PASSWORD)
    assert refused.status == 429
    assert "Set-Cookie" not in refused.headers
    assert 1 <= int(refused.headers["Retry-After"]) <= LIMITS.window_s
    assert "Too many failed login attempts" in await refused.text()
    assert (await env.form("bob", PASSWORD)).status == 303  # another username from the same address is fine


async def test_the_username_is_free_again_in_the_next_window(env: Env) -> None:
    for _ in range(LIMITS.per_user + 2):
        await env.form("ALICE", WRONG)  # compared lowercase: one counter for Alice and alice
    assert (await env.form("alice", PASSWORD)).status == 429
    env.clock.advance(LIMITS.window_s)
    assert (await env.form("alice", PASSWORD)).status == 303


async def test_retry_after_counts_down_to_the_end_of_the_window(env: Env) -> None:
    env.clock.now = START + 100
    for _ in range(LIMITS.per_user):
        await env.form("alice", WRONG)
    refused = await env.form("alice", WRONG)
    assert refused.headers["Retry-After"] == str(LIMITS.window_s - 100)
    assert "Try again in 4 minute(s)." in await refused.text()


async def test_a_success_resets_the_usernames_count(env: Env) -> None:
    for _ in range(LIMITS.per_user - 1):
        assert (await env.form("alice", WRONG)).status == 401
    assert (await env.form("alice", PASSWORD)).status == 303
    for _ in range(LIMITS.per_user):
        assert (await env.form("alice", WRONG)).status == 401  # five more failures before the limit
    assert (await env.form("alice", WRONG)).status == 429


async def test_unknown_and_known_usernames_are_answered_alike(env: Env) -> None:
    answers = {}
    for username in ("alice", "nobody"):
        for _ in range(LIMITS.per_user):
            await env.api(username, WRONG)
        response = await env.api(username, WRONG)
        answers[username] = (response.status, response.headers["Retry-After"], await response.json())
    assert answers["alice"] == answers["nobody"]
    status, retry_after, body = answers["alice"]
    assert (status, body["error"], body["retry_after_s"]) == (429, "auth.rate_limited", int(retry_after))
    assert "too many failed logins" in body["message"] and "alice" not in body["message"]


async def test_the_json_login_and_the_form_share_the_count(env: Env) -> None:
    for _ in range(3):
        assert (await env.api("alice", WRONG)).status == 401
    for _ in range(2):
        assert (await env.form("alice", WRONG)).status == 401
    assert (await env.api("alice", PASSWORD)).status == 429


async def test_the_throttled_form_is_translated(env: Env) -> None:
    for _ in range(LIMITS.per_user):
        await env.form("alice", WRONG)
    french = await env.form("alice", WRONG, **{"Accept-Language": "fr"})
    html = await french.text()
    assert french.status == 429
    assert "Trop de tentatives de connexion échouées." in html and 'role="alert"' in html


# --- per address -----------------------------------------------------------------------------------------


async def test_many_usernames_from_one_address_hit_the_address_limit(database: Database) -> None:
    client, _clock, _state = await _env(database, Limits(window_s=300, per_user=5, per_address=8))
    async with client:
        for number in range(8):
            response = await client.post("/api/auth/session", json={"username": f"user{number}", "password": WRONG})
            assert response.status == 401
        refused = await client.post("/api/auth/session", json={"username": "alice", "password": PASSWORD})
        assert refused.status == 429


@pytest.mark.parametrize(("trusted", "separate"), [(["127.0.0.1"], True), ([], False)])
async def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_address_limit(
    database: Database, trusted: list[str], separate: bool,
) -> None:
    """The test client connects from 127.0.0.1: as a trusted proxy, the clients it forwards are counted apart;
    untrusted, its X-Forwarded-For is a forgery anyone could send, and everyone shares its address."""
    client, _clock, _state = await _env(database, Limits(window_s=300, per_user=50, per_address=3),
                                        security=SecuritySettings(trusted_proxies=trusted))
    async with client:
        for number in range(3):
            response = await client.post("/api/auth/session", json={"username": f"user{number}", "password": WRONG},
                                         headers={"X-Forwarded-For": "203.0.113.7"})
            assert response.status == 401
        other = await client.post("/api/auth/session", json={"username": "alice", "password": PASSWORD},
                                  headers={"X-Forwarded-For": "198.51.100.9, 127.0.0.1"})
        assert other.status == (200 if separate else 429)


async def test_successes_do_not_use_up_the_address(database: Database) -> None:
    """A desk of agents behind one NAT logs in every morning: only failures count against the address."""
    client, _clock, _state = await _env(database, Limits(window_s=300, per_user=5, per_address=3))
    async with client:
        for _ in range(10):
            response = await client.post("/api/auth/session", json={"username": "bob", "password": PASSWORD})
            assert response.status == 200
        for _ in range(3):
            assert (await client.post("/api/auth/session", json={"username": "x", "password": WRONG})).status == 401
        assert (await client.post("/api/auth/session", json={"username": "bob", "password": PASSWORD})).status == 429


# --- the limiter itself ----------------------------------------------------------------------------------


async def test_every_node_counts_the_same_attempts(state_nodes: StateNodes) -> None:
    """Two server nodes on one Redis (one node for the in-process backend) share the counters."""
    first = LoginLimiter(state_nodes.nodes[0], LIMITS, clock=lambda: START)  # one window, however long it takes
    second = LoginLimiter(state_nodes.nodes[-1], LIMITS, clock=lambda: START)
    for number in range(LIMITS.per_user):
        await (first if number % 2 else second).begin("carol", "192.0.2.7")
    with pytest.raises(LoginThrottled):
        await first.begin("carol", "192.0.2.8")
    with pytest.raises(LoginThrottled):
        await second.begin("Carol ", "192.0.2.9")
    await second.begin("dave", "192.0.2.7")  # another username


async def test_counters_expire_and_leave_nothing_behind() -> None:
    clock = FakeClock(START)
    state = InMemoryStateBackend(clock=clock)
    limiter = LoginLimiter(state, LIMITS, clock=clock)
    attempt = await limiter.begin("alice", "192.0.2.1")
    await limiter.begin("bob", "192.0.2.1")
    await limiter.succeeded(attempt)
    keys = await state.keys(KEY_PREFIX)
    assert len(keys) == 2 and not any("alice" in key or "bob" in key for key in keys)  # usernames are hashed
    clock.advance(2 * LIMITS.window_s)
    assert await state.keys(KEY_PREFIX) == []


async def test_a_late_success_does_not_recreate_an_expired_counter() -> None:
    clock = FakeClock(START)
    state = InMemoryStateBackend(clock=clock)
    limiter = LoginLimiter(state, LIMITS, clock=clock)
    attempt = await limiter.begin("alice", "192.0.2.1")
    clock.advance(3 * LIMITS.window_s)
    await limiter.succeeded(attempt)
    assert await state.keys(KEY_PREFIX) == []


async def test_the_limiter_fails_open_when_the_state_is_down(caplog: pytest.LogCaptureFixture) -> None:
    limiter = LoginLimiter(BrokenState(), Limits(window_s=300, per_user=1, per_address=1))
    with caplog.at_level(logging.WARNING, logger="cti.http.ratelimit"):
        for _ in range(5):
            attempt = await limiter.begin("alice", "192.0.2.1")
            await limiter.succeeded(attempt)
    assert "login limits not applied (state.unavailable)" in caplog.text


async def test_logins_work_while_the_counters_are_unreachable(database: Database) -> None:
    client, _clock, _state = await _env(database, Limits(window_s=300, per_user=1, per_address=1), BrokenState())
    async with client:
        for _ in range(3):
            assert (await client.post("/login", data={"username": "alice", "password": WRONG},
                                      allow_redirects=False)).status == 401
        ok = await client.post("/login", data={"username": "alice", "password": PASSWORD}, allow_redirects=False)
        assert ok.status == 303 and ok.cookies["cti_session"].value


@pytest.mark.parametrize(("remote", "bucket"), [
    ("192.0.2.10", "192.0.2.10"),
    ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
    ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),
    ("::ffff:192.0.2.10", "192.0.2.10"),
    ("fe80::1%eth0", "fe80::/64"),
    (None, "unknown"),
    ("not an address", "unknown"),
])
def test_address_buckets(remote: str | None, bucket: str) -> None:
    assert address_bucket(remote) == bucket


def test_username_digest_is_case_blind_and_takes_any_text() -> None:
    assert username_digest(" Alice") == username_digest("alice")
    assert len(username_digest("\ud800\x00" * 500)) == 32  # a lone surrogate or a NUL is no crash


def test_limits_come_from_the_security_section() -> None:
    settings = load_settings(environ={"CTI_SECURITY__LOGIN_FAILURES_PER_USER": "3",
                                      "CTI_SECURITY__LOGIN_FAILURES_PER_ADDRESS": "50",
                                      "CTI_SECURITY__LOGIN_WINDOW_S": "600"})
    assert Limits.of(settings.security) == Limits(window_s=600, per_user=3, per_address=50)
    assert Limits.of(SecuritySettings()) == Limits(window_s=300, per_user=5, per_address=30)
    with pytest.raises(SettingsError, match="login_failures_per_user"):
        load_settings(environ={"CTI_SECURITY__LOGIN_FAILURES_PER_USER": "0"})
