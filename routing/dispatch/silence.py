"""Fallback on silence: a message sent with `fallback_after` that is not `delivered` or
`read` by its deadline (`messages.fallback_at`) is sent once more over the supporter's
next usable channel.

The scan reads due deadlines by the partial index `ix_messages_fallback_at` (only pending
deadlines are in it). Each message is claimed by an UPDATE that clears its deadline
where it is still due, in the same transaction as the re-queue: whichever worker's UPDATE
matches first owns it (PostgreSQL locks the row; the second UPDATE then matches nothing),
and a crash before the commit leaves the deadline in place for the next scan, so a
message falls back once, with any number of workers and across restarts.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, Table, update
from sqlalchemy import select as sa_select
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from routing.context import AppContext
from routing.outbound.queue import next_channel, requeue_on
from routing.outbound.spans import span_text
from routing.periodic import Periodic
from storage.models import Message, MessageStatusEvent

log = logging.getLogger(__name__)

MESSAGES: Table = SQLModel.metadata.tables["messages"]
SCAN_LIMIT = 500
INTERVAL = 5.0


def due_deadlines(now: datetime, limit: int = SCAN_LIMIT) -> Select[Any]:
    """The scan's statement: ids of messages whose deadline has passed, earliest first."""
    return (
        sa_select(MESSAGES.c.id)
        .where(MESSAGES.c.fallback_at.is_not(None), MESSAGES.c.fallback_at <= now)
        .order_by(MESSAGES.c.fallback_at)
        .limit(limit)
    )


async def fall_back_on_silence(ctx: AppContext, limit: int = SCAN_LIMIT) -> int:
    """One scan: every message past its deadline handled, each in its own transaction;
    returns how many were re-queued on another channel."""
    now = ctx.clock()
    async with ctx.sessions() as session:
        due = list((await session.execute(due_deadlines(now, limit))).scalars())
    moved = 0
    for message_id in due:
        async with ctx.sessions() as session:
            if await _handle(session, ctx, message_id, now):
                moved += 1
            await session.commit()
    return moved


async def _handle(session: AsyncSession, ctx: AppContext, message_id: int, now: datetime) -> bool:
    claimed = await session.execute(
        update(MESSAGES)
        .where(
            MESSAGES.c.id == message_id,
            MESSAGES.c.fallback_at.is_not(None),
            MESSAGES.c.fallback_at <= now,
        )
        .values(fallback_at=None)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return False  # another worker has it, or it was heard from meanwhile
    message = await session.get(Message, message_id)
    if message is None:
        return False
    if message.status == "queued":
        # Still waiting to go out (quiet hours, throttling, a retry): the silence counts
        # from its send, so the deadline moves on by the same span.
        message.fallback_at = now + timedelta(seconds=message.fallback_after or 0)
        session.add(message)
        return False
    if message.status != "sent":
        return False  # delivered, read, or ended: nothing to do
    silent = message.channel
    choice = await next_channel(session, ctx, message)
    if choice is None or choice.channel is None:
        log.info("message %s: no delivery on %s, and no other channel", message_id, silent)
        return False
    span = message.fallback_after or 0
    note = f"no delivery on {silent} within {span_text(span)}: sent over {choice.channel}"
    await requeue_on(session, ctx, message, choice, note)
    message.fallback_from = silent
    session.add(message)
    session.add(
        MessageStatusEvent(
            message_id=message_id,
            channel=choice.channel,
            status="queued",
            error=note,
            created_at=now,
        )
    )
    log.info("message %s falls back on silence from %s to %s", message_id, silent, choice.channel)
    return True


class SilenceFallback(Periodic):
    """Background loop for `serve` and `worker`: a scan every `interval` seconds."""

    name = "fallback-on-silence"

    def __init__(self, ctx: AppContext, interval: float = INTERVAL) -> None:
        super().__init__(interval)
        self.ctx = ctx

    async def round(self) -> int:
        return await fall_back_on_silence(self.ctx)
