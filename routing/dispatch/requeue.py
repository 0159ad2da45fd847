"""Send failed messages again: `rallypoint requeue --failed --since …`.

A failed outbound message (every retry and fallback used up) goes back to the outbox on
the channel and address it failed on, once: it is queued again only if it is still
failed and has no outbox row, under a conditional update, so a second run (or one racing
the dispatcher) queues nothing twice. Messages to supporters who have opted out since, or
to an address that has (matched by blind index with encryption at rest), are left alone.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Text, exists, select, type_coerce, update
from sqlmodel.ext.asyncio.session import AsyncSession

from routing.outbound.queue import PRIORITY_BULK, PRIORITY_REPLY
from storage.crypto import INDEX_PREFIX, active, is_sealed
from storage.models import (
    Message,
    MessageStatusEvent,
    OutboxItem,
    Supporter,
    SupporterAddress,
)
from storage.sealed_types import pair_index

REPLY_KINDS = ("one_on_one", "auto_reply", "consent", "info", "nudge")


async def requeue_failed(session: AsyncSession, *, since: datetime, now: datetime) -> int:
    """Queue again the outbound messages that failed at or after `since`; how many.
    The caller commits."""
    messages = Message.__table__  # type: ignore[attr-defined]
    outbox = OutboxItem.__table__  # type: ignore[attr-defined]
    supporters = Supporter.__table__  # type: ignore[attr-defined]
    addresses = SupporterAddress.__table__  # type: ignore[attr-defined]
    failed = select(
        messages.c.id,
        messages.c.kind,
        messages.c.channel,
        messages.c.supporter_id,
        type_coerce(messages.c.address, Text),  # as stored: `<sealed> <index>` with keys
    ).where(
        messages.c.direction == "outbound",
        messages.c.status == "failed",
        messages.c.updated_at >= since,
        messages.c.channel.is_not(None),
        messages.c.address.is_not(None),
        ~exists().where(outbox.c.message_id == messages.c.id),
    )
    rows = (
        await session.execute(
            failed.join(supporters, supporters.c.id == messages.c.supporter_id)
            .where(supporters.c.opted_out.is_(False))
            .order_by(messages.c.id)
        )
    ).all()
    # Addresses opted out since (e.g. a Telegram chat that blocked the bot), compared by
    # blind index with keys: a message's sealed copy never equals the stored index in SQL.
    off = {
        (supporter_id, channel, _index(address))
        for supporter_id, channel, address in await session.execute(
            select(
                addresses.c.supporter_id,
                addresses.c.channel,
                type_coerce(addresses.c.address, Text),  # the index, not decrypted
            ).where(
                addresses.c.opted_out.is_(True),
                addresses.c.supporter_id.in_(
                    failed.with_only_columns(messages.c.supporter_id).scalar_subquery()
                ),
            )
        )
    }
    requeued = 0
    for message_id, kind, channel, supporter_id, address in rows:
        if (supporter_id, channel, _index(address)) in off:
            continue
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


def _index(stored: str) -> str:
    """What an address is matched by: its blind index with keys (a message's copy holds
    it after the sealed address; one stored before keys is indexed here), else itself."""
    if is_sealed(stored):
        return pair_index(stored)
    crypto = active()
    if crypto is None or stored.startswith(INDEX_PREFIX):
        return stored
    return crypto.blind(stored)
