"""Claiming outbox rows with leases, so any number of dispatchers share the work.

PostgreSQL: `SELECT … FOR UPDATE SKIP LOCKED` then the lease is written in the same
transaction, so two workers never claim one row. SQLite has one writer and every
transaction begins IMMEDIATE (storage/db.py), so the same select + update is already
exclusive there (SQLAlchemy leaves FOR UPDATE out for SQLite).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, update
from sqlalchemy import select as sa_select
from sqlmodel import col

from gateway.context import AppContext
from storage.models import Message, OutboxItem


@dataclass(frozen=True)
class Claimed:
    outbox_id: int
    message_id: int
    priority: int
    channel: str | None
    address: str | None
    lease_until: datetime


def _due(now: datetime):  # type: ignore[no-untyped-def]
    return (
        col(OutboxItem.due_at) <= now,
        or_(col(OutboxItem.lease_until).is_(None), col(OutboxItem.lease_until) < now),
    )


async def claim_batch(
    ctx: AppContext, owner: str, limit: int, lease_seconds: float
) -> list[Claimed]:
    """Lease up to `limit` due rows to `owner`: replies first (priority), then oldest due."""
    if limit <= 0:
        return []
    now = ctx.clock()
    until = now + timedelta(seconds=lease_seconds)
    async with ctx.sessions() as session:
        rows = (
            await session.execute(
                sa_select(
                    col(OutboxItem.id),
                    col(OutboxItem.message_id),
                    col(OutboxItem.priority),
                    col(Message.channel),
                    col(Message.address),
                )
                .join(Message, col(Message.id) == col(OutboxItem.message_id))
                .where(*_due(now))
                .order_by(col(OutboxItem.priority), col(OutboxItem.due_at), col(OutboxItem.id))
                .limit(limit)
                .with_for_update(skip_locked=True, of=OutboxItem)  # type: ignore[arg-type]
            )
        ).all()
        if not rows:
            await session.rollback()
            return []
        await session.exec(
            update(OutboxItem)
            .where(col(OutboxItem.id).in_([row[0] for row in rows]))
            .values(lease_owner=owner, lease_until=until)
        )
        await session.commit()
    return [
        Claimed(
            outbox_id=oid,
            message_id=mid,
            priority=priority,
            channel=channel,
            address=address,
            lease_until=until,
        )
        for oid, mid, priority, channel, address in rows
    ]


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
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
