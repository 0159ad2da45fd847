"""Delivery statuses: callbacks move a message forward only, whatever order they arrive in."""

from __future__ import annotations

import logging

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from channels.base import SEND_ERRORS, RecipientOptedOut, StatusUpdate
from routing.context import AppContext
from routing.people.consent import record_consent
from routing.webhooks.events import emit_many, status_changed
from storage.models import (
    Message,
    MessageAttempt,
    MessageStatusEvent,
    PendingStatus,
    Supporter,
)

log = logging.getLogger(__name__)

_RANK = {"queued": 0, "sent": 1, "delivered": 2, "read": 3}
TERMINAL = frozenset({"failed", "undelivered", "skipped"})
# A message the supporter got: its fallback on silence is off (routing/dispatch/silence.py).
REACHED = frozenset({"delivered", "read"})


def moves_forward(current: str, new: str) -> bool:
    """Whether `new` may replace `current`: never out of a final state, never backwards."""
    if current in TERMINAL or current == new:
        return False
    if new in TERMINAL:
        return True
    return _RANK.get(new, -1) > _RANK.get(current, -1)


async def apply_status_update(session: AsyncSession, ctx: AppContext, update: StatusUpdate) -> None:
    attempt = (
        await session.exec(
            select(MessageAttempt).where(
                MessageAttempt.channel == update.channel,
                MessageAttempt.provider_message_id == update.provider_message_id,
            )
        )
    ).first()
    if update.recipients and not sent_to_recipient(attempt, update):
        return
    if attempt is None:
        # The callback beat the send result to the database: keep it for later.
        session.add(
            PendingStatus(
                channel=update.channel,
                provider_message_id=update.provider_message_id,
                status=update.status,
                error=update.error_message,
                error_code=update.error_code,
                failure_kind=type(update.failure).__name__ if update.failure else None,
                created_at=ctx.clock(),
            )
        )
        return
    await _apply_to_attempt(session, ctx, attempt, update)


def sent_to_recipient(attempt: MessageAttempt | None, update: StatusUpdate) -> bool:
    """Whether a report naming its recipients (an email bounce) is about `attempt`.

    Such a report could be forged by anyone, so it is never kept for an attempt not
    stored yet, and applies only when it names the address the attempt went to."""
    if attempt is None:
        log.info("%s report for a message we do not know ignored", update.channel)
        return False
    if attempt.address.lower() in {r.lower() for r in update.recipients}:
        return True
    log.info(
        "%s report for message %s ignored: it names another recipient",
        update.channel,
        attempt.message_id,
    )
    log.debug(
        "report names %s; attempt %s went to %s", update.recipients, attempt.id, attempt.address
    )
    return False


async def apply_pending_statuses(
    session: AsyncSession, ctx: AppContext, attempt: MessageAttempt
) -> None:
    """Apply callbacks that arrived before `attempt`'s provider id was stored."""
    if attempt.provider_message_id is None:
        return
    pending = (
        await session.exec(
            select(PendingStatus)
            .where(
                PendingStatus.channel == attempt.channel,
                PendingStatus.provider_message_id == attempt.provider_message_id,
            )
            .order_by(PendingStatus.id)  # type: ignore[arg-type]
        )
    ).all()
    for row in pending:
        failure_cls = SEND_ERRORS.get(row.failure_kind or "")
        update = StatusUpdate(
            channel=attempt.channel,  # type: ignore[arg-type]
            provider_message_id=row.provider_message_id,
            status=row.status,  # type: ignore[arg-type]
            error_code=row.error_code,
            error_message=row.error,
            failure=failure_cls(row.error or "", code=row.error_code) if failure_cls else None,
        )
        await _apply_to_attempt(session, ctx, attempt, update)
        await session.delete(row)


async def _apply_to_attempt(
    session: AsyncSession, ctx: AppContext, attempt: MessageAttempt, update: StatusUpdate
) -> None:
    now = ctx.clock()
    if not moves_forward(attempt.status, update.status):
        return
    attempt.status = update.status
    if update.error_code or update.error_message:
        attempt.error_code = update.error_code
        attempt.error = update.error_message
    session.add(attempt)
    message = await session.get(Message, attempt.message_id)
    if message is None:
        return
    session.add(
        MessageStatusEvent(
            message_id=attempt.message_id,
            channel=attempt.channel,
            status=update.status,
            error=update.error_message,
            error_code=update.error_code,
            created_at=now,
        )
    )
    is_current = (
        message.channel == attempt.channel
        and message.provider_message_id == attempt.provider_message_id
    )
    if not is_current or not moves_forward(message.status, update.status):
        return
    if isinstance(update.failure, RecipientOptedOut):
        supporter = await session.get(Supporter, message.supporter_id)
        if supporter is not None:
            await record_consent(
                session,
                supporter,
                "opt_out",
                now=now,
                channel=attempt.channel,
                message_id=message.id,
                reason=f"provider error {update.error_code}",
            )
    if update.status in TERMINAL and update.failure is not None and update.failure.fallback:
        # Imported here: outbound depends on status for pending callbacks.
        from routing.outbound.queue import fall_back

        if await fall_back(session, ctx, message, update.failure):
            return
    message.status = update.status
    message.updated_at = now
    if update.status in REACHED:
        message.fallback_at = None  # heard from: no fallback on silence
    if update.error_code or update.error_message:
        message.error_code = update.error_code
        message.error = update.error_message
    session.add(message)
    assert message.id is not None
    await emit_many(
        session, "message.status", [status_changed(message.id, message.channel, update.status)], now
    )
    log.info("message %s status %s", message.id, update.status)
