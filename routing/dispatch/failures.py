"""Failed sends in the recorder's batch: what `record_failure` writes, for many at once.

Retries on the same channel (throttling, outages: nearly all of a storm) take a handful of
set-based statements; the rest (fall back, give up, opt out) go through `record_failure`
row by row, in the same transaction.

A failure is applied only while its claim is still this dispatcher's: its outbox row is
leased to it and its attempt still open. Once the lease ran out and another dispatcher
claimed the row (which settles the attempt as interrupted), or finished it, a late
failure changes nothing: no result is applied twice. The rows are locked while they are
checked (PostgreSQL; SQLite has one writer), so no claim slips in between.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import timedelta

from sqlalchemy import Table, bindparam, update
from sqlalchemy import select as sa_select
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from channels.base import SendError
from routing.context import AppContext
from routing.dispatch.batch import Ready
from routing.dispatch.outcome import record_failure, retry_delay, retry_note, short_error
from storage.models import Message, MessageAttempt

log = logging.getLogger(__name__)

MESSAGES: Table = SQLModel.metadata.tables["messages"]
ATTEMPTS: Table = SQLModel.metadata.tables["message_attempts"]
OUTBOX: Table = SQLModel.metadata.tables["outbox"]


async def write_failed(
    session: AsyncSession,
    ctx: AppContext,
    owner: str,
    failures: Sequence[tuple[Ready, BaseException]],
    *,
    random: Callable[[], float],
) -> None:
    """`record_failure` for every (claimed row, error) whose claim is still `owner`'s."""
    if not failures:
        return
    now = ctx.clock()
    ours = {
        attempt_id: (outbox_id, tries, channel)
        for attempt_id, outbox_id, tries, channel in (
            await session.execute(
                sa_select(ATTEMPTS.c.id, OUTBOX.c.id, OUTBOX.c.attempts, MESSAGES.c.channel)
                .join(OUTBOX, OUTBOX.c.message_id == ATTEMPTS.c.message_id)
                .join(MESSAGES, MESSAGES.c.id == ATTEMPTS.c.message_id)
                .where(
                    ATTEMPTS.c.id.in_([ready.attempt_id for ready, _ in failures]),
                    ATTEMPTS.c.status == "queued",
                    OUTBOX.c.lease_owner == owner,
                )
                .order_by(OUTBOX.c.id)
                .with_for_update(of=OUTBOX)
            )
        ).all()
    }
    retries = []
    for ready, error in failures:
        if ready.attempt_id not in ours:
            log.warning("message %s: lease lost before its failure was stored", ready.message_id)
            continue
        outbox_id, tries, channel = ours[ready.attempt_id]
        delay = retry_delay(ctx, error, tries, random=random)
        if delay is None:
            message = await session.get(Message, ready.message_id)
            attempt = await session.get(MessageAttempt, ready.attempt_id)
            assert message is not None
            await record_failure(session, ctx, message, attempt, error, random=random)
            continue
        note = retry_note(ready.message_id, channel, error, tries, delay)
        retries.append((ready, error, outbox_id, now + timedelta(seconds=delay), note))
    if not retries:
        return
    await session.execute(
        update(ATTEMPTS)
        .where(ATTEMPTS.c.id == bindparam("a_id"))
        .values(status="failed", error=bindparam("a_error"), error_code=bindparam("a_code")),
        [
            {
                "a_id": ready.attempt_id,
                "a_error": short_error(error),
                "a_code": error.code if isinstance(error, SendError) else None,
            }
            for ready, error, _, _, _ in retries
        ],
    )
    await session.execute(
        update(OUTBOX)
        .where(OUTBOX.c.id == bindparam("o_id"))
        .values(due_at=bindparam("o_due"), lease_owner=None, lease_until=None),
        [{"o_id": outbox_id, "o_due": due} for _, _, outbox_id, due, _ in retries],
    )
    await session.execute(
        update(MESSAGES)
        .where(MESSAGES.c.id == bindparam("m_id"))
        .values(error=bindparam("m_error"), updated_at=now),
        [{"m_id": ready.message_id, "m_error": note} for ready, _, _, _, note in retries],
    )
