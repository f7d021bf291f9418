"""Database fixtures: every database test runs on SQLite and on the real PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.ext.asyncio import create_async_engine

from cti.db import Database, make_database
from cti.db.migrate import upgrade
from cti.settings import DatabaseSettings
from tests.support.tcp_proxy import TcpProxy, proxy_for_url

POSTGRES_URL = os.environ.get("CTI_TEST_POSTGRES_URL", "postgresql+asyncpg://cti:cti@127.0.0.1:55432/cti_test")


async def _drop(name: str) -> None:
    """DROP ... WITH (FORCE) cannot end an autovacuum worker that happens to be in the fresh database (it is
    not our role's backend): wait for it to finish, a few times, rather than fail the test in teardown."""
    for attempt in range(20):
        try:
            await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            return
        except ProgrammingError as exc:
            if "must be a member of the role" not in str(exc) or attempt == 19:
                raise
            await asyncio.sleep(0.25)


async def _admin(statement: str) -> None:
    """CREATE/DROP DATABASE cannot run in a transaction: autocommit through the maintenance database."""
    engine = create_async_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(statement))
    except OSError as exc:
        pytest.fail(f"PostgreSQL at {POSTGRES_URL} is unreachable ({exc}); run scripts/services.sh start")
    finally:
        await engine.dispose()


async def _fresh_postgres_database(template: str | None = None) -> tuple[str, str]:
    """A database per test keeps tests independent on one shared server; fails loudly if it is down."""
    name = f"cti_t_{uuid.uuid4().hex[:12]}"
    await _admin(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    return name, make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)


@dataclass(frozen=True)
class Templates:
    """Databases migrated once per test session; each test gets a copy (much faster than Alembic each time)."""

    sqlite_file: Path
    postgres_name: str


@pytest.fixture(scope="session")
def migration_templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Templates]:
    sqlite_file = tmp_path_factory.mktemp("db-template") / "template.sqlite3"
    upgrade(DatabaseSettings(url=f"sqlite+aiosqlite:///{sqlite_file}"))
    name, url = asyncio.run(_fresh_postgres_database())
    upgrade(DatabaseSettings(url=url))
    yield Templates(sqlite_file, name)
    asyncio.run(_drop(name))


async def _settings_for(
    engine: str, tmp_path: Path, templates: Templates | None
) -> tuple[DatabaseSettings, str | None]:
    """A fresh database on ``engine``: a copy of the migrated template, or empty when ``templates`` is None."""
    if engine == "sqlite":
        target = tmp_path / "cti.sqlite3"
        if templates is not None:
            shutil.copyfile(templates.sqlite_file, target)
        return DatabaseSettings(url=f"sqlite+aiosqlite:///{target}"), None
    name, url = await _fresh_postgres_database(templates.postgres_name if templates else None)
    return DatabaseSettings(url=url), name


@pytest.fixture(params=["sqlite", "postgres"])
async def db_settings(
    request: pytest.FixtureRequest, tmp_path: Path, migration_templates: Templates
) -> AsyncIterator[DatabaseSettings]:
    """A migrated database of its own for this test, on SQLite and on the real PostgreSQL."""
    settings, name = await _settings_for(request.param, tmp_path, migration_templates)
    yield settings
    if name:
        await _drop(name)


@pytest.fixture(params=["sqlite", "postgres"])
async def empty_db_settings(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[DatabaseSettings]:
    """An empty database, for tests of the migrations themselves."""
    settings, name = await _settings_for(request.param, tmp_path, None)
    yield settings
    if name:
        await _drop(name)


@pytest.fixture
async def database(db_settings: DatabaseSettings) -> AsyncIterator[Database]:
    db = make_database(db_settings)
    yield db
    await db.close()


@pytest.fixture
async def proxied_db(migration_templates: Templates) -> AsyncIterator[tuple[Database, TcpProxy]]:
    """A migrated PostgreSQL database of its own, reached through a proxy the test may cut (outage tests)."""
    name, url = await _fresh_postgres_database(migration_templates.postgres_name)
    proxy, proxied = await proxy_for_url(url)
    db = make_database(DatabaseSettings(url=proxied))
    yield db, proxy
    await db.close()
    await proxy.stop()
    await _drop(name)
