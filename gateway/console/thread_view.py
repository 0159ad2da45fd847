"""What the thread page shows about each message: direction, channel, time, delivery
status in words (failed with the provider's reason, a fallback to another channel) and,
for a message still queued, why and until when (quiet hours, rate limit, retry)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from routing.config import RoutingSettings
from routing.outbound.quiet_hours import hold_until
from storage.models import Message, MessageAttempt, OutboxItem, Supporter

STATUS_WORDS = {
    "received": "Received",
    "queued": "Queued",
    "sent": "Sent",
    "delivered": "Delivered",
    "read": "Read",
    "failed": "Failed",
    "undelivered": "Failed (undelivered)",
    "skipped": "Not sent",
}


@dataclass(frozen=True)
class MessageView:
    id: int
    direction: str
    channel: str | None
    at: datetime
    body: str
    subject: str | None
    status: str
    status_text: str
    detail: str | None  # the reason for a failure or a wait, or a fallback's story
    failed: bool
    sent_by: str | None


def fmt(when: datetime) -> str:
    return f"{when:%d %b %H:%M} UTC"


def queued_reason(
    message: Message,
    item: OutboxItem | None,
    supporter: Supporter | None,
    settings: RoutingSettings,
    now: datetime,
) -> str:
    """Why a queued message has not gone yet, and until when."""
    if item is None:
        return "waiting to be sent"
    if item.due_at <= now:
        if item.lease_owner is not None:
            return "being sent now"
        return "waiting for the dispatcher"
    until = fmt(item.due_at)
    if item.attempts > 0 or "retrying" in (message.error or ""):
        why = f" after {message.error}" if message.error else ""
        return f"will retry at {until}{why}"
    # Quiet hours hold a row until the window opens: the minute before it is quiet time.
    held = hold_until(
        now=item.due_at - timedelta(minutes=1),
        kind=message.kind,
        priority=item.priority,
        timezone=supporter.timezone if supporter else None,
        default_timezone=settings.default_timezone,
        quiet_start=settings.quiet_hours_start,
        quiet_end=settings.quiet_hours_end,
    )
    if held is not None:
        return f"held for quiet hours until {until}"
    if message.announcement_id is not None and item.attempts == 0 and item.due_at > item.created_at:
        return f"scheduled for {until}"
    return f"waiting for the channel's rate limit until {until}"


def fallback_story(message: Message, attempts: list[MessageAttempt]) -> str | None:
    """ "Tried whatsapp (failed: …), then sms" when more than one channel was tried."""
    channels: list[tuple[str, MessageAttempt]] = []
    for attempt in attempts:
        if attempt.channel not in [c for c, _ in channels]:
            channels.append((attempt.channel, attempt))
    earlier = [(c, a) for c, a in channels if c != message.channel]
    if not earlier:
        return None
    tried = ", ".join(f"{c} (failed: {a.error or a.status})" for c, a in earlier)
    return f"Tried {tried}, then {message.channel}"


async def message_views(
    session: AsyncSession,
    messages: list[Message],
    supporter: Supporter | None,
    settings: RoutingSettings,
    now: datetime,
) -> list[MessageView]:
    ids = [m.id for m in messages if m.id is not None and m.direction == "outbound"]
    attempts: dict[int, list[MessageAttempt]] = defaultdict(list)
    items: dict[int, OutboxItem] = {}
    if ids:
        for attempt in (
            await session.exec(
                select(MessageAttempt)
                .where(col(MessageAttempt.message_id).in_(ids))
                .order_by(col(MessageAttempt.id))
            )
        ).all():
            attempts[attempt.message_id].append(attempt)
        queued = [m.id for m in messages if m.status == "queued" and m.id is not None]
        if queued:
            rows = await session.exec(
                select(OutboxItem).where(col(OutboxItem.message_id).in_(queued))
            )
            items = {row.message_id: row for row in rows.all()}
    views = []
    for m in messages:
        assert m.id is not None
        detail: str | None = None
        failed = m.status in ("failed", "undelivered", "skipped")
        if m.status == "queued":
            detail = queued_reason(m, items.get(m.id), supporter, settings, now)
        elif failed:
            detail = m.error or m.error_code or "no reason given"
        story = fallback_story(m, attempts.get(m.id, [])) if m.direction == "outbound" else None
        if story:
            detail = f"{story}; {detail}" if detail else story
        views.append(
            MessageView(
                id=m.id,
                direction=m.direction,
                channel=m.channel,
                at=m.created_at,
                body=m.body,
                subject=m.subject,
                status=m.status,
                status_text=STATUS_WORDS.get(m.status, m.status),
                detail=detail,
                failed=failed,
                sent_by=m.sent_by,
            )
        )
    return views
