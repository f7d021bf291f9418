"""Async engine and session factory built from ``DatabaseSettings``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from cti.errors import CtiError
from cti.settings import DatabaseSettings

T = TypeVar("T")


class DatabaseUnavailable(CtiError):
    code = "db.unavailable"


@dataclass
class Database:
    """The one engine of the process plus a session factory; ``session()`` commits or rolls back."""

    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session, session.begin():
            yield session

    async def ping(self) -> None:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception as exc:  # the driver's own exception types vary (sqlite, asyncpg, OSError)
            raise DatabaseUnavailable(str(exc)) from exc

    async def close(self) -> None:
        await self.engine.dispose()


def make_database(settings: DatabaseSettings) -> Database:
    url = make_url(settings.url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, echo=settings.echo, pool_pre_ping=True)
    if url.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return Database(engine, async_sessionmaker(engine, expire_on_commit=False))


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    """WAL lets readers run during a write; foreign keys are off by default in SQLite."""
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def run_with_database(settings: DatabaseSettings, work: Callable[[Database], Awaitable[T]]) -> T:
    """Runs ``work`` on a database opened from ``settings`` and closed afterwards: the CLI's one-shot commands."""

    async def run() -> T:
        db = make_database(settings)
        try:
            return await work(db)
        finally:
            await db.close()

    return asyncio.run(run())
