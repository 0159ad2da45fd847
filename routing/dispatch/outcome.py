"""What a send's outcome writes: success, retry later, fall back, or give up.

Each function works in the caller's session; the caller commits once, so a message's
status, its attempt and its outbox row always change together.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from channels.base import (
    ChannelAdapter,
    ChannelMisconfigured,
    RecipientOptedOut,
    SendError,
    SendResult,
    WindowClosed,
)
from channels.graphemes import truncate
from routing.context import AppContext
from routing.delivery.status import apply_pending_statuses
from routing.dispatch.breaker import CircuitOpen
from routing.dispatch.retry import backoff_delay, retry_after_of, should_retry
from routing.outbound.queue import fall_back, window_open
from routing.people.consent import record_consent
from routing.webhooks.events import emit_many, status_changed
from storage.models import (
    Message,
    MessageAttempt,
    MessageStatusEvent,
    OutboxItem,
    Supporter,
    SupporterAddress,
)

log = logging.getLogger(__name__)

INTERRUPTED = "interrupted: the dispatcher stopped before the provider's answer was stored"


def short_error(error: BaseException) -> str:
    return truncate(str(error), 500) or type(error).__name__


def _event(
    session: AsyncSession,
    ctx: AppContext,
    message: Message,
    status: str,
    error: str | None = None,
    code: str | None = None,
) -> None:
    assert message.id is not None
    session.add(
        MessageStatusEvent(
            message_id=message.id,
            channel=message.channel,
            status=status,
            error=error,
            error_code=code,
            created_at=ctx.clock(),
        )
    )


async def outbox_row(session: AsyncSession, message_id: int) -> OutboxItem | None:
    query = select(OutboxItem).where(OutboxItem.message_id == message_id)
    return (await session.exec(query)).first()


async def finish(
    session: AsyncSession,
    ctx: AppContext,
    message: Message,
    status: str,
    error: str | None,
    code: str | None = None,
) -> None:
    """A final status: the message leaves the outbox for good."""
    assert message.id is not None
    message.status = status
    message.error = error
    if code is not None:
        message.error_code = code
    message.updated_at = ctx.clock()
    session.add(message)
    _event(session, ctx, message, status, error, code)
    await emit_many(
        session,
        "message.status",
        [status_changed(message.id, message.channel, status)],
        ctx.clock(),
    )
    item = await outbox_row(session, message.id)
    if item is not None:
        await session.delete(item)
    log.info("message %s %s on %s", message.id, status, message.channel)


async def settle_interrupted(session: AsyncSession, message_id: int) -> int:
    """Attempts a crashed dispatcher left without a provider id: their outcome is
    unknown, so they are closed as interrupted and the message is sent again."""
    rows = (
        await session.exec(
            select(MessageAttempt).where(
                MessageAttempt.message_id == message_id,
                MessageAttempt.status == "queued",
            )
        )
    ).all()
    for attempt in rows:
        if attempt.provider_message_id is None:
            attempt.status = "failed"
            attempt.error = INTERRUPTED
            session.add(attempt)
            log.warning("message %s: attempt %s was interrupted", message_id, attempt.id)
    return len(rows)


async def record_success(
    session: AsyncSession, ctx: AppContext, attempt: MessageAttempt, result: SendResult
) -> None:
    now = ctx.clock()
    attempt.provider_message_id = result.provider_message_id
    attempt.status = "sent"
    session.add(attempt)
    message = await session.get(Message, attempt.message_id)
    assert message is not None and message.id is not None
    if message.status == "queued" and message.channel == attempt.channel:
        message.status = "sent"
        message.provider_message_id = result.provider_message_id
        message.sent_at = now
        message.updated_at = now
        if result.segments is not None:
            message.segments = result.segments
        session.add(message)
        _event(session, ctx, message, "sent")
        await emit_many(
            session, "message.status", [status_changed(message.id, message.channel, "sent")], now
        )
    else:
        # Only when a lease ran out mid-send and another dispatcher moved the message on.
        log.warning("message %s was %s when its send returned", message.id, message.status)
    supporter = await session.get(Supporter, message.supporter_id)
    if supporter is not None:
        supporter.last_outbound_at = now
        session.add(supporter)
    item = await outbox_row(session, message.id)
    if item is not None:
        await session.delete(item)
    await session.flush()
    await apply_pending_statuses(session, ctx, attempt)


def retry_delay(
    ctx: AppContext, error: BaseException, attempts: int, *, random: Callable[[], float]
) -> float | None:
    """Seconds until the next try on the same channel after `attempts` tries on it, or
    None: not on this channel again (fall back or give up)."""
    if not should_retry(error, attempts, ctx.settings.max_attempts):
        return None
    return backoff_delay(attempts, random=random, retry_after=retry_after_of(error))


def retry_note(
    message_id: int, channel: str | None, error: BaseException, attempts: int, delay: float
) -> str:
    """The message's error while it waits for its retry (and the log line saying so)."""
    log.info(
        "message %s: %s, retry %s in %.1f s", message_id, type(error).__name__, attempts, delay
    )
    return f"{channel}: {short_error(error)} (retrying in {delay:.0f} s)"


async def record_failure(
    session: AsyncSession,
    ctx: AppContext,
    message: Message,
    attempt: MessageAttempt | None,
    error: BaseException,
    *,
    random: Callable[[], float],
) -> str:
    """Retry later on this channel, fall back, or give up; returns which ("retry",
    "fallback", "failed")."""
    assert message.id is not None
    now = ctx.clock()
    code = error.code if isinstance(error, SendError) else None
    if attempt is None:  # failed before any send (window closed, address opted out)
        attempt = MessageAttempt(
            message_id=message.id,
            channel=message.channel or "",
            address=message.address or "",
            status="failed",
            created_at=now,
        )
    attempt.status = "failed"
    attempt.error = short_error(error)
    attempt.error_code = code
    session.add(attempt)
    item = await outbox_row(session, message.id)
    delay = None if item is None else retry_delay(ctx, error, item.attempts, random=random)
    if item is not None and delay is not None:
        item.due_at = now + timedelta(seconds=delay)
        item.lease_owner = None
        item.lease_until = None
        session.add(item)
        message.error = retry_note(message.id, message.channel, error, item.attempts, delay)
        message.updated_at = now
        session.add(message)
        return "retry"
    if isinstance(error, CircuitOpen) and item is not None:
        return await _around_open_circuit(session, ctx, message, item, error)
    _event(session, ctx, message, "failed", short_error(error), code)
    if isinstance(error, RecipientOptedOut):
        await _opt_out(session, ctx, message, error)
    supporter = await session.get(Supporter, message.supporter_id)
    if supporter is not None and supporter.opted_out:
        await finish(
            session,
            ctx,
            message,
            "failed",
            f"{message.channel}: {short_error(error)}; the supporter opted out, no further sends",
            code,
        )
        return "failed"
    failure = error if isinstance(error, SendError) else SendError(short_error(error))
    if failure.fallback:
        old = message.channel
        if await fall_back(session, ctx, message, failure):
            _event(session, ctx, message, "queued", f"fell back from {old}")
            return "fallback"
        await finish(session, ctx, message, "failed", message.error, code)
        return "failed"
    await finish(session, ctx, message, "failed", f"{message.channel}: {short_error(error)}", code)
    return "failed"


async def _around_open_circuit(
    session: AsyncSession, ctx: AppContext, message: Message, item: OutboxItem, error: CircuitOpen
) -> str:
    """Not sent because the channel's provider is failing: the next usable channel at
    once, or, with none, wait for the circuit's next probe without spending a try."""
    old = message.channel
    if await fall_back(session, ctx, message, error):
        _event(session, ctx, message, "queued", f"fell back from {old}: its provider is failing")
        return "fallback"
    item.due_at = error.until
    item.attempts = max(0, item.attempts - 1)
    item.lease_owner = None
    item.lease_until = None
    session.add(item)
    message.error = f"{old}: its provider is failing; waiting for it (no other channel)"
    message.updated_at = ctx.clock()
    session.add(message)
    return "retry"


async def _opt_out(
    session: AsyncSession, ctx: AppContext, message: Message, error: RecipientOptedOut
) -> None:
    supporter = await session.get(Supporter, message.supporter_id)
    if supporter is None:
        return
    if message.channel == "telegram":
        # A blocked bot is a fact about this chat: the address stays off until unblocked.
        row = (
            await session.exec(
                select(SupporterAddress).where(
                    SupporterAddress.supporter_id == supporter.id,
                    SupporterAddress.channel == "telegram",
                    SupporterAddress.address == message.address,
                )
            )
        ).first()
        if row is not None:
            row.opted_out = True
            session.add(row)
    await record_consent(
        session,
        supporter,
        "opt_out",
        now=ctx.clock(),
        channel=message.channel,
        message_id=message.id,
        reason=f"provider: {error.code or type(error).__name__}",
    )


async def send_blocker(
    session: AsyncSession, ctx: AppContext, message: Message, adapter: ChannelAdapter | None
) -> tuple[SendError | None, bool]:
    """A permanent reason not to send on this channel now, and whether to use the
    WhatsApp template."""
    rows = (
        await session.exec(
            select(SupporterAddress).where(
                SupporterAddress.supporter_id == message.supporter_id,
                SupporterAddress.channel == message.channel,
            )
        )
    ).all()
    return address_blocker(list(rows), message, adapter, ctx.clock())


def address_blocker(
    addresses: list[SupporterAddress],
    message: Message,
    adapter: ChannelAdapter | None,
    now: datetime,
) -> tuple[SendError | None, bool]:
    """`send_blocker` over the supporter's addresses already loaded (any channel)."""
    if adapter is None:
        return ChannelMisconfigured(f"{message.channel} is not configured"), False
    address = next(
        (a for a in addresses if a.channel == message.channel and a.address == message.address),
        None,
    )
    if address is None:
        return SendError("the supporter no longer has this address"), False
    if address.opted_out:
        return SendError("opted out of this channel"), False
    if message.channel == "whatsapp" and not window_open(address, now):
        if message.template:
            return None, True
        return WindowClosed("24 h window closed and no template"), False
    return None, False
