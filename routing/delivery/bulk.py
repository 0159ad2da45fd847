"""Many status callbacks in one transaction, with the outcome of `routing.delivery.status` for each.

Plain progress (queued/sent/delivered/read, or a failure without an error to act on) is
applied set-based: two reads, then one executemany per table. A callback that carries an
error, or concerns an attempt not stored yet, goes through `apply_status_update` (opt-out,
fallback, pending callbacks), together with every other callback for the same attempt, so
each attempt still sees its callbacks in order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, insert, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from channels.base import StatusUpdate
from routing.context import AppContext
from routing.delivery.status import REACHED, apply_status_update, moves_forward
from routing.webhooks.events import emit_many, status_changed
from storage.models import Message, MessageAttempt, MessageStatusEvent

ATTEMPTS = MessageAttempt.__table__  # type: ignore[attr-defined]
MESSAGES = Message.__table__  # type: ignore[attr-defined]
EVENTS = MessageStatusEvent.__table__  # type: ignore[attr-defined]


@dataclass
class StatusRow:
    """The status of an attempt (with its message's id) or of a message, as read."""

    id: int
    status: str
    channel: str | None = None
    provider_message_id: str | None = None
    message_id: int = 0


@dataclass
class Progress:
    """What plain progress changes: attempts and messages (new status), history rows."""

    attempts: dict[int, StatusRow]
    messages: dict[int, StatusRow]
    events: list[dict[str, object]]


def plan_progress(
    updates: Sequence[StatusUpdate],
    attempts: dict[tuple[str | None, str | None], StatusRow],
    messages: dict[int, StatusRow],
    now: datetime,
) -> Progress:
    """Forward-only progress of `updates` (in order) on their `attempts` and, where the
    attempt is the message's current one, its message (pure: both set-based paths, this
    module and the SQLite lane, write what it returns)."""
    progress = Progress({}, {}, [])
    for u in updates:
        attempt = attempts[(u.channel, u.provider_message_id)]
        if not moves_forward(attempt.status, u.status):
            continue
        attempt.status = u.status
        progress.attempts[attempt.id] = attempt
        message = messages.get(attempt.message_id)
        if message is None:
            continue
        progress.events.append(status_event_row(message.id, attempt.channel, u.status, now))
        is_current = (
            message.channel == attempt.channel
            and message.provider_message_id == attempt.provider_message_id
        )
        if is_current and moves_forward(message.status, u.status):
            message.status = u.status
            progress.messages[message.id] = message
    return progress


def status_event_row(
    message_id: int, channel: str | None, status: str, now: datetime
) -> dict[str, object]:
    """The history row of plain progress (no error)."""
    return {
        "message_id": message_id,
        "channel": channel,
        "status": status,
        "error": None,
        "error_code": None,
        "created_at": now,
    }


def is_plain(update: StatusUpdate) -> bool:
    return (
        update.failure is None
        and not update.error_code
        and not update.error_message
        and not update.recipients  # checked against the attempt's address first
    )


async def apply_status_updates(
    session: AsyncSession, ctx: AppContext, updates: Sequence[StatusUpdate]
) -> None:
    """Apply `updates` in order; forward-only, as `apply_status_update` for each."""
    rows = await session.execute(
        select(
            ATTEMPTS.c.id,
            ATTEMPTS.c.status,
            ATTEMPTS.c.channel,
            ATTEMPTS.c.provider_message_id,
            ATTEMPTS.c.message_id,
        ).where(
            # Both columns of the unique (channel, provider_message_id) index, or it is
            # scanned whole.
            ATTEMPTS.c.channel.in_({u.channel for u in updates}),
            ATTEMPTS.c.provider_message_id.in_({u.provider_message_id for u in updates}),
        )
    )
    attempts = {(r[2], r[3]): StatusRow(*r) for r in rows}
    slow_keys = {
        (u.channel, u.provider_message_id)
        for u in updates
        if not is_plain(u) or (u.channel, u.provider_message_id) not in attempts
    }
    fast = [u for u in updates if (u.channel, u.provider_message_id) not in slow_keys]
    if fast:
        await _apply_plain(session, ctx, fast, attempts)
    for u in updates:
        if (u.channel, u.provider_message_id) in slow_keys:
            await apply_status_update(session, ctx, u)


async def _apply_plain(
    session: AsyncSession,
    ctx: AppContext,
    updates: list[StatusUpdate],
    attempts: dict[tuple[str | None, str | None], StatusRow],
) -> None:
    now = ctx.clock()
    ids = {attempts[(u.channel, u.provider_message_id)].message_id for u in updates}
    messages = {
        r[0]: StatusRow(r[0], r[1], r[2], r[3])
        for r in await session.execute(
            select(
                MESSAGES.c.id, MESSAGES.c.status, MESSAGES.c.channel, MESSAGES.c.provider_message_id
            ).where(MESSAGES.c.id.in_(ids))
        )
    }
    progress = plan_progress(updates, attempts, messages, now)
    if progress.attempts:
        await session.execute(
            update(ATTEMPTS)
            .where(ATTEMPTS.c.id == bindparam("b_id"))
            .values(status=bindparam("b_status")),
            [{"b_id": a.id, "b_status": a.status} for a in progress.attempts.values()],
        )
    if progress.messages:
        await session.execute(
            update(MESSAGES)
            .where(MESSAGES.c.id == bindparam("b_id"))
            .values(status=bindparam("b_status"), updated_at=now),
            [{"b_id": m.id, "b_status": m.status} for m in progress.messages.values()],
        )
        reached = [m.id for m in progress.messages.values() if m.status in REACHED]
        if reached:  # heard from: no fallback on silence (routing/dispatch/silence.py)
            await session.execute(
                update(MESSAGES)
                .where(MESSAGES.c.id.in_(reached), MESSAGES.c.fallback_at.is_not(None))
                .values(fallback_at=None)
            )
    if progress.events:
        await session.execute(insert(EVENTS), progress.events)
    if progress.messages:
        await emit_many(session, "message.status", status_subjects(progress), now)


def status_subjects(progress: Progress) -> list[dict[str, object]]:
    """The `message.status` subjects of plain progress: each message moved, at its new
    status (both set-based paths, this module and the SQLite lane, emit these)."""
    return [status_changed(m.id, m.channel, m.status) for m in progress.messages.values()]
