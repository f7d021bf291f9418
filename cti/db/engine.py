"""Async engine and session factory built from ``DatabaseSettings``."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from sqlalchemy import event, exc, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from cti.errors import CtiError
from cti.settings import DatabaseSettings

T = TypeVar("T")


class DatabaseUnavailable(CtiError):
    """The database cannot be reached (down, restarting, network cut): worth trying again in a moment."""

    code = "db.unavailable"


_UNREACHABLE = (OSError, TimeoutError, exc.OperationalError, exc.InterfaceError, exc.DisconnectionError,
                exc.TimeoutError)


def is_unavailable(error: BaseException) -> bool:
    """Whether ``error`` says the database is out of reach, rather than that the statement is wrong.

    asyncpg raises a bare ``ConnectionRefusedError`` when it cannot connect, and a ``DBAPIError`` with the
    connection invalidated when the link drops mid-statement; SQLite's "database is locked" is an
    ``OperationalError``: all of them pass by themselves.
    """
    if isinstance(error, (DatabaseUnavailable, *_UNREACHABLE)):
        return True
    return isinstance(error, exc.DBAPIError) and bool(error.connection_invalidated)


@contextmanager
def unavailable_raised() -> Iterator[None]:
    """Turns a database outage met inside the block into ``DatabaseUnavailable``; other errors pass unchanged."""
    try:
        yield
    except DatabaseUnavailable:
        raise
    except Exception as error:
        if is_unavailable(error):
            raise DatabaseUnavailable(str(error) or type(error).__name__) from error
        raise


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
        except Exception as error:  # the driver's own exception types vary (sqlite, asyncpg, OSError)
            raise DatabaseUnavailable(str(error)) from error

    async def close(self) -> None:
        await self.engine.dispose()


def make_database(settings: DatabaseSettings) -> Database:
    url = make_url(settings.url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    connect_args: dict[str, float] = {}
    if url.get_backend_name() == "postgresql":  # asyncpg: connect() and every statement are bounded
        connect_args = {"timeout": settings.connect_timeout_s, "command_timeout": settings.command_timeout_s}
    engine = create_async_engine(url, echo=settings.echo, pool_pre_ping=True, connect_args=connect_args)
    if url.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", functools.partial(_sqlite_pragmas, settings.sqlite_cache_kib))
    return Database(engine, async_sessionmaker(engine, expire_on_commit=False))


def _sqlite_pragmas(cache_kib: int, dbapi_connection: object, _record: object) -> None:
    """WAL lets readers run during a write; foreign keys are off by default in SQLite.

    The page cache is small (``cache_kib``, SQLite's default is 2 MiB per connection) because here it is mostly
    thrown away: with WAL, a connection drops its whole cache when it next reads after another connection wrote,
    and every call writes. What a big cache did was let a read of many rows (the wallboard's full recount every 5
    minutes, a report) fill up to 2 MiB of pages on whichever pooled connection ran it, freed at its next read;
    each such burst left holes in the heap, and the soak saw them as memory climbing 5 minutes at a time
    (docs/RELIABILITY.md, "Soak"). A small cache recycles its own pages instead, and the pages read again come
    from the kernel's file cache.
    """
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute(f"PRAGMA cache_size=-{int(cache_kib)}")  # negative: KiB, not pages
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
