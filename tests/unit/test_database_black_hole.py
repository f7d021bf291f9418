"""A database behind a network that silently loses packets: every step ends by our own timeouts, as an outage.

Without ``connect_timeout_s`` / ``command_timeout_s`` asyncpg would wait 60 s for a connection and for ever
for an answer on an open one, holding the caller's step of the call that long. The hole is real: a TCP proxy
that accepts and then forwards nothing (``tests/support/tcp_proxy.py``) in front of the test PostgreSQL.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from cti.db import Database, is_unavailable, make_database
from cti.settings import DatabaseSettings
from tests.plugins.database import POSTGRES_URL
from tests.support.tcp_proxy import TcpProxy, proxy_for_url

pytestmark = pytest.mark.postgres
GUARD_S = 30.0  # only turns a hang into a failure; the timeouts under test are a fraction of a second


@pytest.fixture
async def holed() -> AsyncIterator[tuple[Database, TcpProxy]]:
    proxy, url = await proxy_for_url(POSTGRES_URL)
    db = make_database(DatabaseSettings(url=url, connect_timeout_s=0.5, command_timeout_s=0.5))
    yield db, proxy
    await db.close()
    await proxy.stop()


async def _select_one(db: Database) -> int:
    async with db.session() as session:
        return int((await session.execute(text("SELECT 1"))).scalar_one())


async def _outage(db: Database) -> BaseException:
    async with asyncio.timeout(GUARD_S):
        with pytest.raises(Exception) as raised:
            await _select_one(db)
    return raised.value


async def test_a_connection_into_the_hole_times_out_as_an_outage(holed: tuple[Database, TcpProxy]) -> None:
    db, proxy = holed
    await proxy.black_hole()
    error = await _outage(db)
    assert is_unavailable(error), repr(error)
    await proxy.restore()
    assert await _select_one(db) == 1


async def test_a_query_on_an_open_connection_times_out_and_the_pool_recovers(holed: tuple[Database, TcpProxy]) -> None:
    db, proxy = holed
    assert await _select_one(db) == 1  # a pooled connection, open through the proxy
    await proxy.black_hole()
    error = await _outage(db)
    assert is_unavailable(error), repr(error)
    await proxy.restore()
    async with asyncio.timeout(GUARD_S):
        while True:  # the first checkout may still meet the reset of the swallowed connection
            try:
                assert await _select_one(db) == 1
                break
            except Exception as exc:
                assert is_unavailable(exc), repr(exc)


def test_the_timeouts_are_settings_with_sane_bounds() -> None:
    settings = DatabaseSettings()
    assert (settings.connect_timeout_s, settings.command_timeout_s) == (5.0, 15.0)
    with pytest.raises(ValueError, match="connect_timeout_s"):
        DatabaseSettings(connect_timeout_s=0)
