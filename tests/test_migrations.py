"""The Alembic migrations build exactly the schema the models describe, on SQLite and (when
RALLYPOINT_TEST_DATABASE_URL is set) on PostgreSQL."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

from storage.db import make_engine
from storage.migrate import upgrade
from storage.search_terms import terms_of
from tests.conftest import PG_URL

INITIAL = "48220c735da1"  # the first released schema


def _index_text(index: Any, connection: Connection) -> tuple[str, str]:
    """An index's name and expressions with case, whitespace and parentheses dropped."""
    compiled = ",".join(
        str(e.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True}))
        for e in index.expressions
    )
    return index.name, re.sub(r"[\s()]", "", compiled).lower()


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": False})
    diff = list(compare_metadata(context, SQLModel.metadata))
    # PostgreSQL prints a CASE in an index over several lines and Alembic compares the
    # expressions with spaces removed but not newlines: the same index would show as a
    # removal and an addition. Drop such pairs when the texts agree without whitespace.
    removed = {_index_text(d[1], connection) for d in diff if d[0] == "remove_index"}  # type: ignore[index]
    added = {_index_text(d[1], connection) for d in diff if d[0] == "add_index"}  # type: ignore[index]
    same = removed & added
    return [
        d
        for d in diff
        if not (
            isinstance(d, tuple)
            and d[0] in ("remove_index", "add_index")
            and _index_text(d[1], connection) in same
        )
    ]


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


async def test_a_database_of_the_first_release_upgrades_keeping_its_rows(tmp_path: Path) -> None:
    """A deployment made at the initial schema gains each later change on `serve`'s
    upgrade, rows intact (migrations are added, never rewritten), including the rows that
    refer to `teams`, which SQLite has to rebuild (foreign keys stay off meanwhile)."""
    url = f"sqlite:///{tmp_path / 'deployed.db'}"
    await upgrade(url, INITIAL)
    engine = make_engine(url)
    async with engine.begin() as conn:
        for statement in (
            "INSERT INTO teams (id, name, created_at) VALUES (1, 'Nairobi', '2026-01-05')",
            "INSERT INTO checkins (id, team_id, weekday, local_time, prompt, inactive_days,"
            " created_at) VALUES (1, 1, 0, '18:00', 'How did the week go?', 14, '2026-01-05')",
            "INSERT INTO supporters (id, name, preferred_channels, opted_out, source,"
            " created_at, updated_at) VALUES (1, 'Amina', '[]', 0, 'api', '2026-01-05',"
            " '2026-01-05')",
            "INSERT INTO team_memberships (supporter_id, team_id) VALUES (1, 1)",
            "INSERT INTO api_keys (id, key_hash, prefix, role, team_id, created_at)"
            " VALUES (1, 'h', 'rp_x', 'team_lead', 1, '2026-01-05')",
        ):
            await conn.execute(text(statement))
    await upgrade(url)
    async with engine.connect() as conn:
        row = (await conn.execute(text("SELECT prompt, timezone FROM checkins"))).one()
        kept = [
            (await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one()
            for table in ("team_memberships", "api_keys", "supporters", "teams")
        ]
        teams_sql = (
            await conn.execute(text("SELECT sql FROM sqlite_master WHERE name = 'teams'"))
        ).scalar_one()
        supporters_sql = (
            await conn.execute(text("SELECT sql FROM sqlite_master WHERE name = 'supporters'"))
        ).scalar_one()
        # The search index migration made the supporters' terms (am, ami, amin, amina...).
        terms = set((await conn.execute(text("SELECT term FROM supporter_search_terms"))).scalars())
        assert await conn.run_sync(_diff) == []
    async with engine.begin() as conn:
        # A deleted team's id is never handed to the next team (AUTOINCREMENT).
        await conn.execute(text("DELETE FROM teams WHERE id = 1"))
        await conn.execute(
            text("INSERT INTO teams (name, created_at) VALUES ('Manila', '2026-02-01')")
        )
        new_id = (await conn.execute(text("SELECT id FROM teams"))).scalar_one()
    await engine.dispose()
    assert tuple(row) == ("How did the week go?", None)
    assert kept == [1, 1, 1, 1]
    assert "AUTOINCREMENT" in teams_sql
    assert "AUTOINCREMENT" in supporters_sql and "name_index" not in supporters_sql
    assert terms == terms_of("Amina", [])
    assert new_id == 2


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


async def test_a_start_on_an_up_to_date_sqlite_database_skips_the_reference_check(
    tmp_path: Path,
) -> None:
    """The check of every foreign key reads every table (minutes on millions of rows): it
    runs when a migration was applied, not on every start of an up-to-date database."""
    import sqlite3

    path = tmp_path / "current.db"
    url = f"sqlite:///{path}"
    await upgrade(url)
    raw = sqlite3.connect(path)  # foreign keys off: a reference to nobody goes in
    raw.execute("INSERT INTO team_memberships (supporter_id, team_id) VALUES (424242, 434343)")
    raw.commit()
    assert raw.execute("PRAGMA foreign_key_check").fetchall()
    raw.close()
    await upgrade(url)  # nothing to apply: starts, the row is still there
    raw = sqlite3.connect(path)
    assert raw.execute("SELECT count(*) FROM team_memberships").fetchone() == (1,)
    raw.close()


async def test_a_migration_that_would_leave_a_broken_reference_changes_nothing(
    tmp_path: Path,
) -> None:
    """When a migration is applied the references are checked before the commit."""
    import sqlite3

    path = tmp_path / "behind.db"
    url = f"sqlite:///{path}"
    await upgrade(url, "7c4e2b9d1f60")
    raw = sqlite3.connect(path)
    raw.execute("INSERT INTO team_memberships (supporter_id, team_id) VALUES (424242, 434343)")
    raw.commit()
    raw.close()
    with pytest.raises(RuntimeError, match="broken references"):
        await upgrade(url)
    raw = sqlite3.connect(path)
    assert raw.execute("SELECT version_num FROM alembic_version").fetchone() == ("7c4e2b9d1f60",)
    raw.close()
