"""Cancelling an announcement (polls and check-in prompts are announcements too): its
fan-out stops and every message of it not yet handed to a provider is skipped.

One transaction, with the announcement row locked as each fan-out batch locks it, so a
batch either committed before (its messages are skipped here) or sees `cancelled` and
writes nothing (routing/outbound/fanout.py). Outbox rows leased by a dispatcher are left alone: that
send may be at the provider already and cannot be recalled, and its result is recorded as
usual. Should such a message come back for another try (a retry, a fallback, a lease that
ran out), the dispatcher skips it when it claims the row (routing/dispatch/batch.py).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import (
    ColumnElement,
    Table,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlmodel import SQLModel, col
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Announcement

log = logging.getLogger(__name__)

CANCELLED = "cancelled"  # the announcement's state, and its stopped messages' error
MESSAGES: Table = SQLModel.metadata.tables["messages"]
OUTBOX: Table = SQLModel.metadata.tables["outbox"]
EVENTS: Table = SQLModel.metadata.tables["message_status_events"]


class NothingToCancel(Exception):
    """Fanned out, every message has been handed to a provider or has ended, and nothing
    else the cancel stops is left (a poll still open, a check-in run's queued nudges)."""


async def cancel_announcement(
    session: AsyncSession,
    announcement_id: int,
    now: datetime,
    also_left: Sequence[ColumnElement[bool]] = (),
) -> int:
    """Cancel in the caller's transaction (the caller commits); the number of messages
    stopped now (0 when it was cancelled already). `also_left`: conditions (EXISTS) under
    which the caller has more to stop once its messages have all gone out
    (routing/organizing/polls.py `open_poll_of`, routing/organizing/checkin_cancel.py
    `queued_nudges`): then it is still cancelled.
    Raises NothingToCancel."""
    state = (
        await session.execute(
            select(col(Announcement.state))
            .where(col(Announcement.id) == announcement_id)
            .with_for_update()
        )
    ).scalar_one()
    if state == CANCELLED:
        return 0
    queued = (MESSAGES.c.announcement_id == announcement_id, MESSAGES.c.status == "queued")
    if state != "pending":
        left = await session.execute(select(or_(exists().where(*queued), *also_left)))
        if not left.scalar_one():
            raise NothingToCancel("nothing left to cancel: every message was sent or has ended")
    count = await stop_queued(session, (MESSAGES.c.announcement_id == announcement_id,), now)
    values: dict[str, object] = {"state": CANCELLED}
    if state == "pending":  # the fan-out stops here: recipients are the messages written
        values["recipients"] = (
            select(func.count())
            .select_from(MESSAGES)
            .where(MESSAGES.c.announcement_id == announcement_id)
            .scalar_subquery()
        )
    await session.execute(
        update(Announcement).where(col(Announcement.id) == announcement_id).values(**values)
    )
    log.info("announcement %s cancelled (%s); %s messages stopped", announcement_id, state, count)
    return count


async def stop_queued(
    session: AsyncSession, selected: tuple[ColumnElement[bool], ...], now: datetime
) -> int:
    """Stop the `selected` messages still queued (no commit): their outbox rows go unless a
    dispatcher leased them (that send may be at the provider already), and those left
    without one become `skipped` with error `cancelled`, each with one history event
    (a repeated call adds none). How many were stopped now."""
    queued = (*selected, MESSAGES.c.status == "queued")
    await session.execute(
        delete(OUTBOX).where(
            OUTBOX.c.lease_owner.is_(None),
            OUTBOX.c.message_id.in_(select(MESSAGES.c.id).where(*queued)),
        )
    )
    stopped = await session.execute(
        update(MESSAGES)
        .where(*queued, ~exists().where(OUTBOX.c.message_id == MESSAGES.c.id))
        .values(status="skipped", error=CANCELLED, updated_at=now)
    )
    count = int(stopped.rowcount or 0)  # type: ignore[attr-defined]
    if not count:
        return 0
    recorded = exists().where(
        EVENTS.c.message_id == MESSAGES.c.id,
        EVENTS.c.status == "skipped",
        EVENTS.c.error == CANCELLED,
    )
    await session.execute(
        insert(EVENTS).from_select(
            ["message_id", "channel", "status", "error", "created_at"],
            select(
                MESSAGES.c.id,
                MESSAGES.c.channel,
                literal("skipped"),
                literal(CANCELLED),
                literal(now, EVENTS.c.created_at.type),
            ).where(
                *selected,
                MESSAGES.c.status == "skipped",
                MESSAGES.c.error == CANCELLED,
                ~recorded,
            ),
        )
    )
    return count


def stopped_filter(announcement_id: int) -> tuple[ColumnElement[bool], ...]:
    """The messages of an announcement that a cancel stopped."""
    return (
        MESSAGES.c.announcement_id == announcement_id,
        MESSAGES.c.status == "skipped",
        MESSAGES.c.error == CANCELLED,
    )


async def stopped_count(session: AsyncSession, announcement_id: int) -> int:
    found = await session.execute(
        select(func.count()).select_from(MESSAGES).where(*stopped_filter(announcement_id))
    )
    return int(found.scalar_one())
