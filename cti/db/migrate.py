"""Alembic driven from code, so ``cti db upgrade`` needs no alembic.ini beside the working directory."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config

from cti.settings import DatabaseSettings

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(settings: DatabaseSettings) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", settings.url.replace("%", "%%"))
    return config


def upgrade(settings: DatabaseSettings, revision: str = "head") -> None:
    """Blocking: the migration environment runs its own event loop."""
    command.upgrade(alembic_config(settings), revision)


async def upgrade_async(settings: DatabaseSettings, revision: str = "head") -> None:
    """From inside a running loop: Alembic's async environment needs a thread of its own."""
    await asyncio.to_thread(upgrade, settings, revision)
