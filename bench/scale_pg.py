"""The data-scale databases on PostgreSQL: one database per size (`rp_scale_1x` ...), its
schema from the project's migrations, its rows copied from the cached SQLite file of the
same size (bench/seed_scale.py) with COPY (asyncpg, CSV), then the sequences moved past the
seeded ids, VACUUM ANALYZE (what autovacuum would have done by then) and the counts checked
table by table. The database's comment holds the SQLite file's fingerprint, so a schema
change rebuilds it and a re-run reuses it."""

from __future__ import annotations

import asyncio
import csv
import io
import sqlite3
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import asyncpg

from bench.seed_scale import CHUNK, Backfill

SERVER = "postgresql://postgres@127.0.0.1:5432"
NULL = "\\N"  # the COPY null marker: an empty CSV field is an empty string


def database(factor: int) -> str:
    return f"rp_scale_{factor}x"


def url(name: str) -> str:
    """The app's URL of a database."""
    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"


async def _fingerprint(admin: asyncpg.Connection, name: str) -> str | None:
    value = await admin.fetchval(
        "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1", name
    )
    return str(value) if value is not None else None


def ensure(factor: int, sqlite_file: Path, fingerprint: str, backfills: Sequence[Backfill]) -> str:
    """The PostgreSQL database of `factor` x, built from `sqlite_file` when missing or
    made from another fingerprint; its name."""
    return asyncio.run(_ensure(database(factor), sqlite_file, fingerprint, backfills))


async def _ensure(
    name: str, sqlite_file: Path, fingerprint: str, backfills: Sequence[Backfill]
) -> str:
    admin = await asyncpg.connect(f"{SERVER}/postgres")
    try:
        if await _fingerprint(admin, name) == fingerprint:
            return name
        print(f"  building PostgreSQL database {name} (once; kept until the schema changes)")
        started = time.monotonic()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
        from storage.migrate import upgrade

        await upgrade(url(name))
        await _copy(name, sqlite_file, backfills)
        await admin.execute(f"COMMENT ON DATABASE \"{name}\" IS '{fingerprint}'")
        print(f"  built {name} in {time.monotonic() - started:.0f} s", flush=True)
        return name
    finally:
        await admin.close()


async def _copy(name: str, sqlite_file: Path, backfills: Sequence[Backfill]) -> None:
    source = sqlite3.connect(f"file:{sqlite_file}?mode=ro", uri=True)
    conn = await asyncpg.connect(f"{SERVER}/{name}", server_settings={"timezone": "UTC"})
    try:
        tables = [
            str(r["table_name"])
            for r in await conn.fetch(
                "SELECT table_name FROM information_schema.tables"
                " WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
            )
        ]
        written: dict[str, int] = {}
        async with conn.transaction():
            # Tables in any order: foreign keys are not checked during the load (the rows
            # come from a file whose own counts were checked).
            await conn.execute("SET LOCAL session_replication_role = replica")
            for table in tables:
                if table == "alembic_version":
                    continue
                columns = [
                    str(r[0])
                    for r in await conn.fetch(
                        "SELECT column_name FROM information_schema.columns"
                        " WHERE table_schema = 'public' AND table_name = $1"
                        " ORDER BY ordinal_position",
                        table,
                    )
                ]
                mine = {r[1] for r in source.execute(f'PRAGMA table_info("{table}")')}
                if not mine:
                    continue  # a PostgreSQL-only table: left to a backfill
                missing = [c for c in columns if c not in mine]
                if missing:
                    raise RuntimeError(f"bench seed: {table} lacks {missing} on SQLite")
                written[table] = await _copy_table(conn, source, table, columns)
                serial = (
                    await conn.fetchval("SELECT pg_get_serial_sequence($1, 'id')", table)
                    if "id" in columns
                    else None
                )
                if serial is not None:
                    await conn.execute(
                        f"SELECT setval('{serial}', coalesce((SELECT max(id) FROM \"{table}\"),"
                        " 0) + 1, false)"
                    )
            for backfill in backfills:
                for statement in backfill.postgresql:
                    await conn.execute(statement)
        for table, expected in written.items():
            have = await conn.fetchval(f'SELECT count(*) FROM "{table}"')
            if have != expected:
                raise RuntimeError(f"bench seed: {table}: {have} rows on PostgreSQL, {expected}")
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
        source.close()


async def _copy_table(
    conn: asyncpg.Connection, source: sqlite3.Connection, table: str, columns: list[str]
) -> int:
    picked = ", ".join(f"ifnull(\"{c}\", '{NULL}')" for c in columns)
    cursor = source.execute(f'SELECT {picked} FROM "{table}"')  # noqa: S608 (schema names)
    count = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal count
        while rows := cursor.fetchmany(CHUNK):
            count += len(rows)
            out = io.StringIO()
            csv.writer(out, lineterminator="\n").writerows(rows)
            yield out.getvalue().encode()

    await conn.copy_to_table(table, source=chunks(), columns=columns, format="csv", null=NULL)
    return count


def clone(name: str) -> str:
    """A throwaway copy of `name` for one run (the app writes sessions and key use)."""

    async def make() -> str:
        admin = await asyncpg.connect(f"{SERVER}/postgres")
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}_run" WITH (FORCE)')
            await admin.execute(f'CREATE DATABASE "{name}_run" TEMPLATE "{name}"')
        finally:
            await admin.close()
        return f"{name}_run"

    return asyncio.run(make())


def drop_clone(name: str) -> None:
    async def drop() -> None:
        admin = await asyncpg.connect(f"{SERVER}/postgres")
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}_run" WITH (FORCE)')
        finally:
            await admin.close()

    asyncio.run(drop())
