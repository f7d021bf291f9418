"""The user store on SQLite and the real PostgreSQL: checks, uniqueness, passwords, authentication."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from cti.db import Database
from cti.users.models import UserRow
from cti.users.store import UserExists, UserInvalid, UserNotFound, UserStore

PASSWORD = "a long enough password"


@pytest.fixture
def store(database: Database) -> UserStore:
    return UserStore(database)


async def test_create_get_and_list(store: UserStore) -> None:
    alice = await store.create("Alice", PASSWORD, "agent", agent_id="alice", language="fr")
    boss = await store.create("boss", PASSWORD, "supervisor", display_name="The Boss")
    assert (alice.username, alice.display_name, alice.role, alice.agent_id, alice.language, alice.active) == (
        "alice", "alice", "agent", "alice", "fr", True)
    assert await store.get(alice.id) == alice
    assert await store.by_username("ALICE") == alice
    assert [user.username for user in await store.list()] == ["alice", "boss"]
    assert boss.display_name == "The Boss" and boss.agent_id is None and boss.language is None
    assert alice.created_at.tzinfo is not None
    assert "password_hash" not in alice.as_json() and "scrypt" not in str(alice.as_json())


async def test_every_reason_is_given_at_once(store: UserStore) -> None:
    with pytest.raises(UserInvalid) as refused:
        await store.create("x", "short", "root", agent_id="no spaces", language="de")
    assert [reason.split(":")[0] for reason in refused.value.errors] == [
        "username", "role", "agent_id", "language", "password"]
    assert refused.value.code == "users.invalid"
    assert await store.list() == []


@pytest.mark.parametrize("username", ["a", "x" * 65, "bad name", "évelyne", "a/b"])
async def test_bad_usernames(store: UserStore, username: str) -> None:
    with pytest.raises(UserInvalid, match="username"):
        await store.create(username, PASSWORD, "agent")


async def test_username_and_agent_id_are_unique(store: UserStore) -> None:
    await store.create("alice", PASSWORD, "agent", agent_id="alice")
    with pytest.raises(UserExists, match="username 'alice'"):
        await store.create("ALICE", PASSWORD, "agent")
    with pytest.raises(UserExists, match="agent 'alice'"):
        await store.create("alice2", PASSWORD, "agent", agent_id="alice")
    assert UserExists.code == "users.exists"


async def test_update_changes_only_what_is_given(store: UserStore) -> None:
    alice = await store.create("alice", PASSWORD, "agent", agent_id="alice", language="fr")
    await store.create("bob", PASSWORD, "agent", agent_id="bob")
    changed = await store.update(alice.id, display_name="Alice A.", language=None)
    assert (changed.display_name, changed.language, changed.agent_id, changed.role) == ("Alice A.", None, "alice",
                                                                                        "agent")
    changed = await store.update(alice.id, role="supervisor", agent_id="", active=False)
    assert (changed.role, changed.agent_id, changed.active) == ("supervisor", None, False)
    with pytest.raises(UserExists):
        await store.update(alice.id, agent_id="bob")
    with pytest.raises(UserInvalid, match="role"):
        await store.update(alice.id, role="root")
    with pytest.raises(UserNotFound):
        await store.update(9999, display_name="x")
    assert (await store.update(alice.id, agent_id="alice")).agent_id == "alice"  # its own agent again


async def test_password_is_hashed_and_changed(store: UserStore, database: Database) -> None:
    alice = await store.create("alice", PASSWORD, "agent")
    async with database.session() as session:
        stored = await session.scalar(select(UserRow.password_hash).where(UserRow.id == alice.id))
    assert stored is not None and stored.startswith("scrypt$") and PASSWORD not in stored
    with pytest.raises(UserInvalid, match="at least 10"):
        await store.set_password(alice.id, "short")
    changed = await store.set_password(alice.id, "another long password")
    assert changed.password_changed_at > alice.password_changed_at
    assert await store.authenticate("alice", PASSWORD) is None
    assert await store.authenticate("alice", "another long password") == changed


async def test_authenticate(store: UserStore) -> None:
    alice = await store.create("alice", PASSWORD, "agent")
    assert await store.authenticate(" Alice ", PASSWORD) == alice
    assert await store.authenticate("alice", PASSWORD + "x") is None
    assert await store.authenticate("nobody", PASSWORD) is None
    assert await store.authenticate("alice", "x" * 5000) is None
    await store.update(alice.id, active=False)
    assert await store.authenticate("alice", PASSWORD) is None  # inactive users are refused


async def test_delete(store: UserStore) -> None:
    alice = await store.create("alice", PASSWORD, "agent", agent_id="alice")
    await store.delete(alice.id)
    with pytest.raises(UserNotFound):
        await store.get(alice.id)
    with pytest.raises(UserNotFound):
        await store.delete(alice.id)
    await store.create("alice", PASSWORD, "agent", agent_id="alice")  # both names free again
