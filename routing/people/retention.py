"""RALLYPOINT_RETENTION_DAYS: message bodies, raw provider payloads and attachments'
metadata older than N days are deleted (and with them the messages' public pages and
the files uploaded to send), in small batches (one short transaction each, so
webhooks and the dispatcher are not held up). The rows stay, with their status,
direction, channel and times, so counts and delivery reports do not change. A message
still queued keeps its body until it has gone out (or failed)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Text, and_, cast, delete, or_, update
from sqlmodel import col, select

from storage.db import SessionFactory
from storage.models import Message, OutboundMedia

BATCH = 500


def _expired(cutoff: datetime, after: int) -> ColumnElement[bool]:
    return and_(
        col(Message.id) > after,
        col(Message.created_at) < cutoff,
        col(Message.status) != "queued",
        or_(
            col(Message.body) != "",
            col(Message.raw).is_not(None),
            # Compared as text: PostgreSQL's json type has no equality.
            cast(col(Message.attachments), Text) != "[]",
        ),
    )


async def purge_old_bodies(
    sessions: SessionFactory, now: datetime, days: int, *, batch: int = BATCH
) -> int:
    """Blank what the retention period has passed; the number of messages blanked."""
    cutoff = now - timedelta(days=days)
    total = after = 0
    while True:
        async with sessions() as session:
            ids = list(
                (
                    await session.exec(
                        select(Message.id)
                        .where(_expired(cutoff, after))
                        .order_by(col(Message.id))
                        .limit(batch)
                    )
                ).all()
            )
            if not ids:
                # Uploaded files to send go with the bodies that carried them.
                await session.execute(
                    delete(OutboundMedia).where(col(OutboundMedia.created_at) < cutoff)
                )
                await session.commit()
                return total
            await session.execute(
                update(Message)
                .where(col(Message.id).in_(ids))
                .values(body="", raw=None, attachments=[], public_token=None)
            )
            await session.commit()
        total += len(ids)
        after = max(i for i in ids if i is not None)
