"""Bring a database schema up to date with Alembic (programmatic config, no alembic.ini)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection

from storage.db import async_url, make_engine

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", async_url(url).replace("%", "%%"))
    return config


def _upgrade(connection: Connection, config: Config, revision: str) -> None:
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def upgrade(url: str, revision: str = "head") -> None:
    """Apply every migration not yet applied (up to `revision`)."""
    engine = make_engine(url)
    config = alembic_config(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_upgrade, config, revision)
    finally:
        await engine.dispose()


def _stamp(connection: Connection, config: Config) -> None:
    config.attributes["connection"] = connection
    command.stamp(config, "head")


async def stamp_head(url: str) -> None:
    """Mark a schema made from the models as fully migrated."""
    engine = make_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_stamp, alembic_config(url))
    finally:
        await engine.dispose()


def upgrade_sync(url: str) -> None:
    asyncio.run(upgrade(url))
