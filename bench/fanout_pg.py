"""Fan-out on PostgreSQL: the same announcement as bench/fanout.py, against a raw asyncpg
executemany of the same message and outbox rows in the same database as the baseline.
Seeded by COPY. Run alone: `python -m bench.fanout_pg 1000000`."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import UTC, datetime

from bench import seed_pg
from bench.fanout import BODY, fan_out_timed
from bench.seed import phone

SIZES = (100_000,)
CHUNK = 50_000


def _dsn() -> str:
    return seed_pg.URL.replace("postgresql+asyncpg", "postgresql")


async def _seed(size: int) -> None:
    import asyncpg

    now = datetime.now(UTC)
    conn = await asyncpg.connect(_dsn())
    try:
        for lo in range(1, size + 1, CHUNK):
            ids = range(lo, min(lo + CHUNK, size + 1))
            await conn.copy_records_to_table(
                "supporters",
                records=[(i, f"Supporter {i}", "[]", False, "import", now, now) for i in ids],
                columns=[
                    *("id", "name", "preferred_channels", "opted_out", "source"),
                    *("created_at", "updated_at"),
                ],
            )
            await conn.copy_records_to_table(
                "supporter_addresses",
                records=[(i, i, "sms", phone(i), False) for i in ids],
                columns=["id", "supporter_id", "channel", "address", "opted_out"],
            )
            await conn.copy_records_to_table(
                "conversations",
                records=[(i, i, False, 0, now) for i in ids],
                columns=["id", "supporter_id", "unread", "unread_count", "created_at"],
            )
        for table in ("supporters", "supporter_addresses", "conversations"):
            await conn.execute(f"SELECT setval('{table}_id_seq', {size})")
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def _baseline(size: int) -> float:
    """A message and an outbox row per supporter by asyncpg executemany, one transaction."""
    import asyncpg

    now = datetime.now(UTC).replace(tzinfo=None)
    conn = await asyncpg.connect(_dsn())
    try:
        await conn.execute(
            "INSERT INTO announcements (id, body, audience, recipients, state, kind,"
            " fanout_cursor, created_at) VALUES (999999, $1, '{}', 0, 'fanned_out',"
            " 'announcement', 0, $2)",
            BODY,
            now,
        )
        top = int(await conn.fetchval("SELECT max(id) FROM messages"))
        start = time.perf_counter()
        async with conn.transaction():
            await conn.executemany(
                "INSERT INTO messages (id, conversation_id, supporter_id, direction, kind,"
                " channel, address, body, status, segments, attachments, channel_choice,"
                " announcement_id, created_at, updated_at) VALUES ($1, $2, $3, 'outbound',"
                " 'announcement', 'sms', $4, $5, 'queued', 1, '[]', '{}', 999999, $6, $7)",
                [(top + i, i, i, phone(i), BODY, now, now) for i in range(1, size + 1)],
            )
            await conn.executemany(
                "INSERT INTO outbox (message_id, priority, due_at, attempts, created_at)"
                " VALUES ($1, 1, $2, 0, $3)",
                [(top + i, now, now) for i in range(1, size + 1)],
            )
        return time.perf_counter() - start
    finally:
        await conn.close()


def child(size: int) -> dict[str, float]:
    seed_pg.fresh_database()
    asyncio.run(_seed(size))
    seconds, announcement_id = asyncio.run(fan_out_timed(seed_pg.URL))
    outbox = seed_pg.count(
        "SELECT count(*) FROM outbox JOIN messages ON messages.id = outbox.message_id"
        f" WHERE messages.announcement_id = {announcement_id}"
    )
    baseline = asyncio.run(_baseline(size))
    return {"seconds": seconds, "baseline": baseline, "outbox": outbox}


if __name__ == "__main__":
    print(json.dumps(child(int(sys.argv[1]))))
