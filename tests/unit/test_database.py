"""Migrations and core tables, on SQLite and the real PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import IntegrityError

import cti.db.all_models  # noqa: F401  (every table on Base.metadata)
from cti.call_records import close_call, find_service, open_call
from cti.db import Database, make_database
from cti.db.base import Base
from cti.db.migrate import alembic_config, upgrade_async
from cti.db.models import CallRecord, ServiceNumber
from cti.demo import demo_documents, seed_demo
from cti.settings import DatabaseSettings
from tests.support.ivr import ivr_service


async def test_migrations_from_an_empty_database_create_every_table(empty_db_settings: DatabaseSettings) -> None:
    await upgrade_async(empty_db_settings)
    db = make_database(empty_db_settings)
    async with db.engine.connect() as conn:
        tables = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
        version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar_one()
    await db.close()
    assert {"service_numbers", "calls", "tickets", "recordings", "transcription_jobs"} <= tables
    assert version == ScriptDirectory.from_config(alembic_config(empty_db_settings)).get_current_head()


async def test_models_and_migrations_agree(empty_db_settings: DatabaseSettings) -> None:
    """Autogenerate finds nothing to do: every model change came with its migration."""
    await upgrade_async(empty_db_settings)
    db = make_database(empty_db_settings)
    async with db.engine.connect() as conn:
        diff = await conn.run_sync(
            lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata))
    await db.close()
    assert diff == []


async def test_demo_seed_is_idempotent(database: Database) -> None:
    assert await seed_demo(ivr_service(database)) == len(demo_documents()) == 2
    assert await seed_demo(ivr_service(database)) == 0
    service = await find_service(database, "5552000")
    assert service is not None and service.language == "fr"


async def test_call_record_lifecycle(database: Database) -> None:
    await seed_demo(ivr_service(database))
    service = await find_service(database, "5551000")
    assert service is not None
    call_id = await open_call(database, CallRecord(
        uniqueid="1700000000.1", channel="PJSIP/caller-0001", caller_number="+33612345678",
        caller_name="Hélène", called_number="5551000", service_id=service.id))
    await close_call(database, call_id, "completed", ["welcome", "menu:2"])
    async with database.session() as session:
        row = (await session.scalars(select(CallRecord).where(CallRecord.id == call_id))).one()
    assert row.outcome == "completed"
    assert row.path == "welcome > menu:2"
    assert row.caller_name == "Hélène"
    assert row.ended_at is not None and row.ended_at >= row.started_at


async def test_unique_number_is_enforced(database: Database) -> None:
    await seed_demo(ivr_service(database))
    with pytest.raises(IntegrityError):
        async with database.session() as session:
            session.add(ServiceNumber(number="5551000", name="dup"))


async def test_disabled_number_is_not_found(database: Database) -> None:
    async with database.session() as session:
        session.add(ServiceNumber(number="999", name="off", enabled=False))
    assert await find_service(database, "999") is None


async def test_ping_reports_an_unreachable_database() -> None:
    from cti.db import make_database
    from cti.db.engine import DatabaseUnavailable
    from cti.settings import DatabaseSettings

    db = make_database(DatabaseSettings(url="postgresql+asyncpg://cti:cti@127.0.0.1:1/none"))
    with pytest.raises(DatabaseUnavailable):
        await db.ping()
    await db.close()


@pytest.mark.parametrize("kib", [256, 1024])
async def test_every_sqlite_connection_gets_the_configured_page_cache(tmp_path: Path,
                                                                     kib: int) -> None:
    """SQLite's page cache is per connection and mostly thrown away under WAL (cti/db/engine.py): each pooled
    connection, not only the first, must be held to the configured size."""
    db = make_database(DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path}/cache.sqlite3", sqlite_cache_kib=kib))
    try:
        async with db.engine.connect() as first, db.engine.connect() as second:
            sizes = [(await conn.execute(text("PRAGMA cache_size"))).scalar_one() for conn in (first, second)]
            journal = (await second.execute(text("PRAGMA journal_mode"))).scalar_one()
    finally:
        await db.close()
    assert sizes == [-kib, -kib] and journal == "wal"
