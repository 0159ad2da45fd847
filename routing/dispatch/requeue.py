"""Send failed messages again: `rallypoint requeue --failed --since …`.

A failed outbound message (every retry and fallback used up) goes back to the outbox on
the channel and address it failed on, once: it is queued again only if it is still
failed and has no outbox row, under a conditional update, so a second run (or one racing
the dispatcher) queues nothing twice. Messages to supporters who have opted out since are
left alone.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import exists, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from routing.outbound.queue import PRIORITY_BULK, PRIORITY_REPLY
from storage.models import (
    Message,
    MessageStatusEvent,
    OutboxItem,
    Supporter,
    SupporterAddress,
)

REPLY_KINDS = ("one_on_one", "auto_reply", "consent", "info", "nudge")


async def requeue_failed(session: AsyncSession, *, since: datetime, now: datetime) -> int:
    """Queue again the outbound messages that failed at or after `since`; how many.
    The caller commits."""
    messages = Message.__table__  # type: ignore[attr-defined]
    outbox = OutboxItem.__table__  # type: ignore[attr-defined]
    supporters = Supporter.__table__  # type: ignore[attr-defined]
    addresses = SupporterAddress.__table__  # type: ignore[attr-defined]
    address_off = exists().where(
        addresses.c.supporter_id == messages.c.supporter_id,
        addresses.c.channel == messages.c.channel,
        addresses.c.address == messages.c.address,
        addresses.c.opted_out.is_(True),
    )
    rows = await session.execute(
        select(messages.c.id, messages.c.kind, messages.c.channel)
        .join(supporters, supporters.c.id == messages.c.supporter_id)
        .where(
            messages.c.direction == "outbound",
            messages.c.status == "failed",
            messages.c.updated_at >= since,
            messages.c.channel.is_not(None),
            messages.c.address.is_not(None),
            supporters.c.opted_out.is_(False),
            ~address_off,  # e.g. a Telegram chat that blocked the bot
            ~exists().where(outbox.c.message_id == messages.c.id),
        )
        .order_by(messages.c.id)
    )
    requeued = 0
    for message_id, kind, channel in rows.all():
        claimed = await session.execute(
            update(messages)
            .where(messages.c.id == message_id, messages.c.status == "failed")
            .values(status="queued", error=None, error_code=None, updated_at=now)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            continue
        priority = PRIORITY_REPLY if kind in REPLY_KINDS else PRIORITY_BULK
        session.add(
            OutboxItem(message_id=message_id, priority=priority, due_at=now, created_at=now)
        )
        session.add(
            MessageStatusEvent(
                message_id=message_id,
                channel=channel,
                status="queued",
                error="re-queued by an operator",
                created_at=now,
            )
        )
        requeued += 1
    return requeued
