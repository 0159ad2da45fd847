"""The Alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection
from sqlmodel import SQLModel

from storage.db import make_engine
from storage.migrate import upgrade


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": False})
    return list(compare_metadata(context, SQLModel.metadata))


async def test_migrations_match_models(tmp_path: Path) -> None:
    # Always on a fresh SQLite file: the PostgreSQL test schema is shared by the run.
    url = f"sqlite:///{tmp_path / 'migrated.db'}"
    await upgrade(url)
    engine = make_engine(url)
    async with engine.connect() as connection:
        diff = await connection.run_sync(_diff)
    await engine.dispose()
    assert diff == [], "models changed without a migration: python -m storage.revision MSG"
