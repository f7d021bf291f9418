"""``cti users add|passwd|list`` and the demo logins of ``cti demo``, in-process on a temporary SQLite.

main() runs its own event loop (asyncio.run), so these tests are plain functions."""

from __future__ import annotations

import asyncio
import io
import stat
from pathlib import Path

import pytest

from cti.cli import main
from cti.db import make_database
from cti.db.migrate import upgrade_async
from cti.demo import demo_logins, demo_password, seed_demo_logins
from cti.settings import DatabaseSettings
from cti.users.store import User, UserStore

PASSWORD = "a long enough password"


@pytest.fixture
def config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    path = tmp_path / "cti.toml"
    path.write_text(f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path}/cti.sqlite3"\n')
    assert main(["-c", str(path), "db", "upgrade"]) == 0
    capsys.readouterr()
    return path


def cti(config: Path, monkeypatch: pytest.MonkeyPatch, *args: str, stdin: str = "") -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return main(["-c", str(config), "users", *args])


def users_of(config: Path) -> list[User]:
    async def read() -> list[User]:
        db = make_database(DatabaseSettings(url=f"sqlite+aiosqlite:///{config.parent}/cti.sqlite3"))
        try:
            return await UserStore(db).list()
        finally:
            await db.close()

    return asyncio.run(read())


def authenticates(config: Path, username: str, password: str) -> bool:
    async def check() -> bool:
        db = make_database(DatabaseSettings(url=f"sqlite+aiosqlite:///{config.parent}/cti.sqlite3"))
        try:
            return await UserStore(db).authenticate(username, password) is not None
        finally:
            await db.close()

    return asyncio.run(check())


def test_add_list_passwd(config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert cti(config, monkeypatch, "list") == 0
    assert "no users yet" in capsys.readouterr().out
    args = ("add", "Alice", "--role", "agent", "--agent", "alice", "--name", "Alice A.", "--language", "fr")
    assert cti(config, monkeypatch, *args, stdin=PASSWORD + "\n") == 0
    assert capsys.readouterr().out == "user alice created (agent, agent alice, fr, Alice A.)\n"
    assert cti(config, monkeypatch, "add", "root", "--role", "admin", stdin=PASSWORD + "\r\n") == 0
    capsys.readouterr()
    assert authenticates(config, "root", PASSWORD)  # the line ending is not part of the password
    assert cti(config, monkeypatch, "list") == 0
    assert capsys.readouterr().out.splitlines() == [
        "alice                    agent, agent alice, fr, Alice A.", "root                     admin, root"]
    assert cti(config, monkeypatch, "passwd", "ALICE", stdin="another long password\n") == 0
    assert capsys.readouterr().out == "user alice: password changed\n"
    assert authenticates(config, "alice", "another long password")
    assert not authenticates(config, "alice", PASSWORD)


def test_refusals_exit_1_with_the_reasons(
    config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cti(config, monkeypatch, "add", "alice", "--role", "agent", stdin="short\n") == 1
    assert "password: the password must have at least 10 characters" in capsys.readouterr().err
    assert cti(config, monkeypatch, "add", "alice", "--role", "agent") == 1  # empty stdin: no password
    capsys.readouterr()
    assert cti(config, monkeypatch, "add", "alice", "--role", "agent", stdin=PASSWORD) == 0
    assert cti(config, monkeypatch, "add", "alice", "--role", "agent", stdin=PASSWORD) == 1
    assert "already taken" in capsys.readouterr().err
    assert cti(config, monkeypatch, "passwd", "nobody", stdin=PASSWORD) == 1
    assert "no user 'nobody'" in capsys.readouterr().err
    assert [user.username for user in users_of(config)] == ["alice"]


def test_the_password_is_never_an_argument(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SystemExit):
        cti(config, monkeypatch, "add", "alice", "--role", "agent", "--password", PASSWORD)


# --- demo logins ---------------------------------------------------------------------------------------


def test_demo_logins_follow_the_demo_agents() -> None:
    logins = {login.username: login for login in demo_logins()}
    assert sorted(logins) == ["alice", "bob", "chloe", "supervisor"]
    assert (logins["supervisor"].role, logins["supervisor"].agent_id) == ("supervisor", None)
    assert [(logins[name].agent_id, logins[name].language) for name in ("alice", "bob", "chloe")] == [
        ("alice", "fr"), ("bob", "en"), ("chloe", "fr")]


def test_demo_creates_missing_logins_once_with_one_password_kept_in_a_file(
    config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("CTI_DEMO_PASSWORD", raising=False)
    monkeypatch.setattr("cti.cli._prompts_build", lambda settings, args: 0)  # no espeak-ng here
    assert main(["-c", str(config), "demo"]) == 0
    out = capsys.readouterr().out
    logins_file = config.parent / "demo-logins.txt"
    assert stat.S_IMODE(logins_file.stat().st_mode) == 0o600
    password, generated = demo_password(logins_file, None)
    assert not generated and len(password) >= 16
    assert f"demo logins: the password of every demo user is {password} (written in {logins_file})" in out
    assert "demo data: 4 logins created" in out
    assert authenticates(config, "supervisor", password) and authenticates(config, "chloe", password)
    by_name = {user.username: user for user in users_of(config)}
    assert (by_name["alice"].role, by_name["alice"].agent_id, by_name["alice"].language) == ("agent", "alice", "fr")
    assert main(["-c", str(config), "demo"]) == 0  # idempotent: nothing created, the password unchanged
    assert "demo data: 0 logins created" in capsys.readouterr().out
    assert demo_password(logins_file, None) == (password, False)
    assert len(users_of(config)) == 4


def test_a_demo_password_the_policy_refuses_exits_1(
    config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CTI_DEMO_PASSWORD", "short")
    monkeypatch.setattr("cti.cli._prompts_build", lambda settings, args: 0)
    assert main(["-c", str(config), "demo"]) == 1
    assert "CTI_DEMO_PASSWORD" in capsys.readouterr().err
    assert users_of(config) == []


def test_demo_password_from_the_environment(
    config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CTI_DEMO_PASSWORD", "the demo password")
    monkeypatch.setattr("cti.cli._prompts_build", lambda settings, args: 0)
    assert main(["-c", str(config), "demo"]) == 0
    assert "is $CTI_DEMO_PASSWORD" in capsys.readouterr().out
    assert not (config.parent / "demo-logins.txt").exists()
    assert authenticates(config, "bob", "the demo password")


async def test_seed_leaves_existing_users_and_taken_agents_alone(tmp_path: Path) -> None:
    settings = DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path}/db.sqlite3")
    await upgrade_async(settings)
    db = make_database(settings)
    store = UserStore(db)
    try:
        await store.create("supervisor", PASSWORD, "admin")
        await store.create("someone", PASSWORD, "agent", agent_id="bob")
        asked: list[int] = []

        def password() -> str:
            asked.append(1)
            return "the demo password"

        created = await seed_demo_logins(store, password)
        assert [login.username for login in created] == ["alice", "chloe"] and asked == [1]
        assert (await store.by_username("supervisor")).role == "admin"
        assert await seed_demo_logins(store, password) == [] and asked == [1]  # not even asked
    finally:
        await db.close()
