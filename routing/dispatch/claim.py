"""Claiming outbox rows with leases, so any number of dispatchers share the work.

PostgreSQL: `SELECT … FOR UPDATE SKIP LOCKED` then the lease is written in the same
transaction (routing/dispatch/batch.py), so two workers never claim one row. SQLite has
one writer and every transaction begins IMMEDIATE (storage/db.py), so the same select +
update is already exclusive there (SQLAlchemy leaves FOR UPDATE out for SQLite).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Table, or_, update
from sqlalchemy import select as sa_select
from sqlmodel import SQLModel, col
from sqlmodel.ext.asyncio.session import AsyncSession

from routing.context import AppContext
from storage.models import OutboxItem

OUTBOX: Table = SQLModel.metadata.tables["outbox"]


async def lock_due_rows(session: AsyncSession, now: datetime, limit: int) -> Sequence[Row[Any]]:
    """Up to `limit` due, unleased rows (id, message_id, priority), locked for this
    transaction: replies first (priority), then oldest due."""
    return (
        await session.execute(
            sa_select(OUTBOX.c.id, OUTBOX.c.message_id, OUTBOX.c.priority)
            .where(
                OUTBOX.c.due_at <= now,
                or_(OUTBOX.c.lease_until.is_(None), OUTBOX.c.lease_until < now),
            )
            .order_by(OUTBOX.c.priority, OUTBOX.c.due_at, OUTBOX.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    ).all()


async def release(ctx: AppContext, owner: str, outbox_ids: list[int] | None = None) -> int:
    """Give back leases held by `owner` (all of them when `outbox_ids` is None)."""
    async with ctx.sessions() as session:
        stmt = update(OutboxItem).where(col(OutboxItem.lease_owner) == owner)
        if outbox_ids is not None:
            if not outbox_ids:
                return 0
            stmt = stmt.where(col(OutboxItem.id).in_(outbox_ids))
        result = await session.exec(stmt.values(lease_owner=None, lease_until=None))
        await session.commit()
    return int(result.rowcount or 0)
