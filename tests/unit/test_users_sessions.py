"""Login sessions in the shared state (in-process and the real Redis): create, read, expire, end."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

from cti.state import InMemoryStateBackend
from cti.users.sessions import SessionStore, token_key
from cti.users.store import User
from tests.plugins.state import FakeClock, StateNodes

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def user(user_id: int = 7, username: str = "alice", role: str = "agent", agent_id: str | None = "alice") -> User:
    return User(user_id, username, username.title(), role, agent_id, "fr", True, NOW, NOW)


async def test_create_stores_only_the_token_hash(state_nodes: StateNodes) -> None:
    store = SessionStore(state_nodes.backend, 3600)
    token, session = await store.create(user())
    assert len(token) >= 43 and len(session.csrf) >= 32 and token != session.csrf
    key = "session:" + hashlib.sha256(token.encode()).hexdigest()
    assert token_key(token) == key
    stored = json.loads(await state_nodes.backend.get(key) or "{}")
    assert set(stored) == {"user_id", "username", "role", "agent_id", "language", "csrf", "expires_at"}
    assert (stored["user_id"], stored["username"], stored["role"], stored["agent_id"], stored["language"]) == (
        7, "alice", "agent", "alice", "fr")
    assert token not in json.dumps(stored)
    assert datetime.fromisoformat(stored["expires_at"]).tzinfo is not None


async def test_every_node_sees_the_session(state_nodes: StateNodes) -> None:
    token, session = await SessionStore(state_nodes.backend, 3600).create(user())
    for node in state_nodes.nodes:
        identity = await SessionStore(node, 3600).get(token)
        assert identity is not None
        assert (identity.via, identity.user_id, identity.username, identity.role, identity.agent_id) == (
            "session-token", 7, "alice", "agent", "alice")
        assert (identity.language, identity.csrf) == ("fr", session.csrf)


async def test_unknown_and_malformed_tokens(state_nodes: StateNodes) -> None:
    store = SessionStore(state_nodes.backend, 3600)
    assert await store.get("") is None
    assert await store.get("nope") is None
    assert await store.get("x" * 10_000) is None
    await state_nodes.backend.set(token_key("corrupt"), "{not json")
    assert await store.get("corrupt") is None
    await state_nodes.backend.set(token_key("partial"), '{"user_id": 1}')
    assert await store.get("partial") is None


async def test_sessions_expire_with_the_state(state_nodes: StateNodes) -> None:
    store = SessionStore(state_nodes.backend, 1)
    token, _ = await store.create(user())
    assert await store.get(token) is not None
    await state_nodes.advance(1.2)
    assert await store.get(token) is None


async def test_expiry_is_checked_again_on_reading() -> None:
    """Even if the state kept the entry (a restored Redis dump), an expired session is refused."""
    clock = FakeClock(NOW.timestamp())
    store = SessionStore(InMemoryStateBackend(clock=FakeClock()), 600, clock=clock)
    token, session = await store.create(user())
    assert session.expires_at == "2026-11-23T10:10:00+00:00"
    clock.advance(599)
    assert await store.get(token) is not None
    clock.advance(1)
    assert await store.get(token) is None


async def test_delete(state_nodes: StateNodes) -> None:
    store = SessionStore(state_nodes.backend, 3600)
    token, _ = await store.create(user())
    other, _ = await store.create(user())
    assert await store.delete(token) is True
    assert await store.get(token) is None
    assert await store.get(other) is not None
    assert await store.delete(token) is False
    assert await store.delete("") is False


async def test_delete_for_user_ends_only_that_users_sessions(state_nodes: StateNodes) -> None:
    store = SessionStore(state_nodes.backend, 3600)
    mine = [(await store.create(user()))[0] for _ in range(3)]
    theirs, _ = await store.create(user(8, "bob", agent_id="bob"))
    await store.delete(mine[0])
    assert await store.delete_for_user(7) == 2
    assert [await store.get(token) for token in mine] == [None, None, None]
    assert await store.get(theirs) is not None
    assert await store.delete_for_user(7) == 0


async def test_the_user_index_drops_expired_entries() -> None:
    clock = FakeClock(NOW.timestamp())
    state = InMemoryStateBackend(clock=clock)
    store = SessionStore(state, 600, clock=clock)
    await store.create(user())
    clock.advance(700)
    await store.create(user())
    assert len(await state.hgetall("session-user:7")) == 1
