"""The Alembic migrations build exactly the schema the models describe, on SQLite and (when
RALLYPOINT_TEST_DATABASE_URL is set) on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

from storage.db import make_engine
from storage.migrate import upgrade
from tests.conftest import PG_URL


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": False})
    return list(compare_metadata(context, SQLModel.metadata))


async def _diff_after_upgrade(url: str) -> list[object]:
    await upgrade(url)
    engine = make_engine(url)
    async with engine.connect() as connection:
        diff = await connection.run_sync(_diff)
    await engine.dispose()
    return diff


async def test_migrations_match_models_on_sqlite(tmp_path: Path) -> None:
    diff = await _diff_after_upgrade(f"sqlite:///{tmp_path / 'migrated.db'}")
    assert diff == [], "models changed without a migration: python -m storage.revision MSG"


@pytest.mark.skipif(PG_URL is None, reason="RALLYPOINT_TEST_DATABASE_URL is not set")
async def test_migrations_match_models_on_postgresql() -> None:
    assert PG_URL is not None
    # A database of its own: the test schema is built from the models, not the migrations.
    name = f"{make_url(PG_URL).database}_migrations"
    admin = make_engine(PG_URL, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
        assert await _diff_after_upgrade(url) == []
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()
