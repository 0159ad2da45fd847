"""Seeding a PostgreSQL benchmark database: the same rows bench/seed.py writes to SQLite."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from datetime import UTC, datetime

from sqlalchemy import insert, text
from sqlmodel import SQLModel

import storage.models as models
from bench.seed import phone
from storage.db import make_engine

SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432"
# Its own name where several people benchmark against one PostgreSQL server.
DATABASE = os.environ.get("BENCH_PG_DATABASE", "rallypoint_bench")
URL = f"{SERVER}/{DATABASE}"


def available() -> bool:
    """Whether a local PostgreSQL answers (trust auth, as on this machine and CI's)."""
    if shutil.which("pg_isready") is None:
        return False
    return (
        subprocess.run(  # noqa: S603
            ["pg_isready", "-h", "127.0.0.1", "-p", "5432", "-q"], check=False, timeout=10
        ).returncode
        == 0
    )


def fresh_database() -> str:
    """Drop and create the benchmark database with the models' schema; its URL."""

    async def create() -> None:
        admin = make_engine(f"{SERVER}/postgres", isolation_level="AUTOCOMMIT")
        async with admin.connect() as conn:
            await conn.execute(text(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"))
            await conn.execute(text(f"CREATE DATABASE {DATABASE}"))
        await admin.dispose()
        engine = make_engine(URL)
        async with engine.begin() as conn:
            await conn.run_sync(SQLModel.metadata.create_all)
        await engine.dispose()

    asyncio.run(create())
    return URL


def seed_queued(count: int) -> None:
    """`count` supporters with an sms address, each with one queued one-on-one and its
    outbox row."""
    now = datetime.now(UTC)
    ids = range(1, count + 1)
    tables = [
        (
            models.Supporter,
            [
                {
                    "id": i,
                    "name": f"Supporter {i}",
                    "preferred_channels": [],
                    "opted_out": False,
                    "source": "import",
                    "created_at": now,
                    "updated_at": now,
                }
                for i in ids
            ],
        ),
        (
            models.SupporterAddress,
            [
                {
                    "id": i,
                    "supporter_id": i,
                    "channel": "sms",
                    "address": phone(i),
                    "opted_out": False,
                }
                for i in ids
            ],
        ),
        (
            models.Conversation,
            [
                {"id": i, "supporter_id": i, "unread": False, "unread_count": 0, "created_at": now}
                for i in ids
            ],
        ),
        (
            models.Message,
            [
                {
                    "id": i,
                    "conversation_id": i,
                    "supporter_id": i,
                    "direction": "outbound",
                    "kind": "one_on_one",
                    "channel": "sms",
                    "address": phone(i),
                    "body": "Canvass on Saturday, 10am",
                    "status": "queued",
                    "segments": 1,
                    "attachments": [],
                    "channel_choice": {},
                    "created_at": now,
                    "updated_at": now,
                }
                for i in ids
            ],
        ),
        (
            models.OutboxItem,
            [
                {"message_id": i, "priority": 0, "due_at": now, "attempts": 0, "created_at": now}
                for i in ids
            ],
        ),
    ]

    async def write() -> None:
        engine = make_engine(URL)
        async with engine.begin() as conn:
            for model, rows in tables:
                await conn.execute(insert(model.__table__), rows)  # type: ignore[attr-defined]
            for table in ("supporters", "supporter_addresses", "conversations", "messages"):
                await conn.execute(
                    text(f"SELECT setval('{table}_id_seq', (SELECT max(id) FROM {table}))")
                )
        await engine.dispose()

    asyncio.run(write())


def count_sent() -> int:
    return count("SELECT count(*) FROM messages WHERE status = 'sent'")


def count(sql: str) -> int:
    """The one number `sql` (our own constant text) selects from the benchmark database."""

    async def read() -> int:
        engine = make_engine(URL)
        async with engine.connect() as conn:
            value = (await conn.execute(text(sql))).scalar_one()
        await engine.dispose()
        return int(value)

    return asyncio.run(read())
