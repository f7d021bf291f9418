"""Database fixtures: every database test runs on SQLite and on the real PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from cti.db import Database, make_database
from cti.db.migrate import upgrade_async
from cti.settings import DatabaseSettings

POSTGRES_URL = os.environ.get("CTI_TEST_POSTGRES_URL", "postgresql+asyncpg://cti:cti@127.0.0.1:55432/cti_test")


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


async def _fresh_postgres_database() -> tuple[str, str]:
    """A database per test keeps tests independent on one shared server; fails loudly if it is down."""
    name = f"cti_t_{uuid.uuid4().hex[:12]}"
    await _admin(f'CREATE DATABASE "{name}"')
    return name, make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", "postgres"])
async def db_settings(request: pytest.FixtureRequest, tmp_path: object) -> AsyncIterator[DatabaseSettings]:
    if request.param == "sqlite":
        yield DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path}/cti.sqlite3")
        return
    name, url = await _fresh_postgres_database()
    try:
        yield DatabaseSettings(url=url)
    finally:
        await _admin(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture
async def database(db_settings: DatabaseSettings) -> AsyncIterator[Database]:
    """A migrated database (Alembic, as in production), on both engines."""
    await upgrade_async(db_settings)
    db = make_database(db_settings)
    yield db
    await db.close()
