"""Bring a database schema up to date with Alembic (programmatic config, no alembic.ini)."""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

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


def _set_pragma(connection: Connection, pragma: str) -> None:
    # On the driver's connection, outside any transaction: SQLite ignores foreign_keys
    # inside one (and SQLAlchemy would begin one for a statement of its own).
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _upgrade_in_one_transaction(connection: Connection, config: Config, revision: str) -> None:
    """On SQLite, with foreign keys off while the migrations run (a migration that rebuilds
    a table drops the old one, and with them on that would cascade to every row referring
    to it) and checked before the commit: a broken reference rolls everything back. The
    check reads every table, so it runs only when a migration was applied (a start on an
    up-to-date database of millions of rows does not wait for it)."""
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        _set_pragma(connection, "foreign_keys=OFF")
    try:
        with connection.begin():
            before = _current_revision(connection)
            _upgrade(connection, config, revision)
            if sqlite and _current_revision(connection) != before:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(
                        f"migration left {len(broken)} broken references (first: {broken[0]})"
                        "; nothing was changed"
                    )
    finally:
        if sqlite:
            _set_pragma(connection, "foreign_keys=ON")


async def upgrade(url: str, revision: str = "head") -> None:
    """Apply every migration not yet applied (up to `revision`), in one transaction."""
    engine = make_engine(url)
    config = alembic_config(url)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_upgrade_in_one_transaction, config, revision)
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


@functools.cache
def head_revision() -> str | None:
    """The newest migration's revision id, read from disk once per process (the scripts
    do not change under a running one; /metrics and /readyz ask on every request)."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return script.get_current_head()


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at (None when it was never migrated)."""
    async with engine.connect() as connection:
        try:
            rows = await connection.execute(text("SELECT version_num FROM alembic_version"))
        except DBAPIError:
            return None
        versions = [str(r[0]) for r in rows]
    return versions[0] if len(versions) == 1 else None
