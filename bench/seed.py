"""Bulk seeding of benchmark databases with the stdlib sqlite3 driver (executemany)."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

CHUNK = 50_000


def now_text() -> str:
    # SQLAlchemy's SQLite DateTime format: the models store aware UTC as naive text.
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def migrate(db: Path) -> None:
    """The schema from the models, stamped as migrated (as the test suite builds it), so
    `serve` finds it up to date."""

    async def create() -> None:
        from sqlmodel import SQLModel

        import storage.models  # noqa: F401  (registers the tables)
        from storage.db import make_engine
        from storage.migrate import stamp_head

        url = f"sqlite:///{db}"
        engine = make_engine(url)
        async with engine.begin() as conn:
            await conn.run_sync(SQLModel.metadata.create_all)
        await engine.dispose()
        await stamp_head(url)

    asyncio.run(create())


def phone(i: int) -> str:
    return f"+1{2000000000 + i}"


def seed_supporters(db: Path, count: int, *, start: int = 1, channel: str = "sms") -> None:
    """`count` supporters, each with an address on `channel` (sms) and a conversation."""
    stamp = now_text()
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        for lo in range(start, start + count, CHUNK):
            ids = range(lo, min(lo + CHUNK, start + count))
            conn.executemany(
                "INSERT INTO supporters (id, name, preferred_channels, opted_out, source,"
                " created_at, updated_at) VALUES (?, ?, '[]', 0, 'import', ?, ?)",
                ((i, f"Supporter {i}", stamp, stamp) for i in ids),
            )
            conn.executemany(
                "INSERT INTO supporter_addresses (id, supporter_id, channel, address, opted_out)"
                " VALUES (?, ?, ?, ?, 0)",
                ((i, i, channel, phone(i)) for i in ids),
            )
            conn.executemany(
                "INSERT INTO conversations (id, supporter_id, unread, unread_count, created_at)"
                " VALUES (?, ?, 0, 0, ?)",
                ((i, i, stamp) for i in ids),
            )


def seed_sent_messages(db: Path, count: int, sid: str = "SM{:032x}") -> list[str]:
    """One sent outbound sms per supporter 1..count, with its attempt; the provider ids."""
    stamp = now_text()
    sids = [sid.format(i) for i in range(1, count + 1)]
    with sqlite3.connect(db) as conn:
        conn.executemany(
            "INSERT INTO messages (id, conversation_id, supporter_id, direction, kind, channel,"
            " address, body, status, provider_message_id, attachments, channel_choice,"
            " created_at, updated_at) VALUES (?, ?, ?, 'outbound', 'one_on_one', 'sms', ?,"
            " 'See you Saturday', 'sent', ?, '[]', '{}', ?, ?)",
            ((i, i, i, phone(i), sids[i - 1], stamp, stamp) for i in range(1, count + 1)),
        )
        conn.executemany(
            "INSERT INTO message_attempts (id, message_id, channel, address, provider_message_id,"
            " status, created_at) VALUES (?, ?, 'sms', ?, ?, 'sent', ?)",
            ((i, i, phone(i), sids[i - 1], stamp) for i in range(1, count + 1)),
        )
    return sids


def count(db: Path, sql: str) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute(sql).fetchone()[0])


def seed_queued_messages(db: Path, count: int, *, channel: str = "sms") -> None:
    """One queued one-on-one message on `channel` (sms) per supporter 1..count, each with its
    outbox row (not an announcement, so quiet hours do not hold them back)."""
    stamp = now_text()
    with sqlite3.connect(db) as conn:
        conn.executemany(
            "INSERT INTO messages (id, conversation_id, supporter_id, direction, kind, channel,"
            " address, body, status, segments, attachments, channel_choice, created_at,"
            " updated_at) VALUES (?, ?, ?, 'outbound', 'one_on_one', ?, ?,"
            " 'Canvass on Saturday, 10am', 'queued', 1, '[]', '{}', ?, ?)",
            ((i, i, i, channel, phone(i), stamp, stamp) for i in range(1, count + 1)),
        )
        conn.executemany(
            "INSERT INTO outbox (message_id, priority, due_at, attempts, created_at)"
            " VALUES (?, 0, ?, 0, ?)",
            ((i, stamp, stamp) for i in range(1, count + 1)),
        )
