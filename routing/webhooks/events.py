"""Which events exist, who subscribes to them, and writing their deliveries.

A delivery row is written in the transaction of the change it reports (an outbox), so an
event is never told that did not happen and never lost once it did. Emitting is cheap when
nobody listens: each running context keeps the set of event types some subscription wants
(`Subscribed`, in `AppContext.services[SUBSCRIBED]` and in the `info` of every session its
factory makes, so a check is a dict look-up and a set membership), refreshed when this
process changes a subscription and by the delivery loop every `REFRESH_SECONDS` (another
process's new subscription is heard from within that time). A stale set can only be too
large, costing one indexed query. A session made without one checks the database.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from routing.context import AppContext
from storage.models import WebhookDelivery, WebhookSubscription

# The events a subscription may ask for.
EVENT_TYPES = (
    "message.received",
    "message.status",
    "supporter.created",
    "supporter.opted_out",
    "supporter.opted_in",
    "poll.answered",
    "event.rsvp",
)
# The event `POST /api/v1/webhooks/{id}/test` sends; no subscription asks for it.
TEST_EVENT = "webhook.test"
REFRESH_SECONDS = 5.0

SUBSCRIPTIONS = WebhookSubscription.__table__  # type: ignore[attr-defined]
DELIVERIES = WebhookDelivery.__table__  # type: ignore[attr-defined]

# The key of the `Subscribed` in AppContext.services and in Session.info.
SUBSCRIBED = "webhook_subscribed"
_EVERY = frozenset(EVENT_TYPES)


class Subscribed:
    """The event types some active subscription wants, as last read (a service of the
    context; nothing to close)."""

    def __init__(self) -> None:
        self.events: frozenset[str] = frozenset()

    async def refresh(self, engine: AsyncEngine) -> frozenset[str]:
        async with engine.connect() as connection:
            rows = await connection.execute(
                select(SUBSCRIPTIONS.c.events).where(SUBSCRIPTIONS.c.paused_at.is_(None))
            )
            self.events = frozenset(e for (stored,) in rows for e in split_events(stored))
        return self.events

    async def aclose(self) -> None:
        return None


def subscribed_of(ctx: AppContext) -> Subscribed:
    """The context's `Subscribed` (made on first use; `build_context` makes it up front so
    its sessions carry it too)."""
    found = ctx.services.get(SUBSCRIBED)
    if not isinstance(found, Subscribed):
        found = ctx.services[SUBSCRIBED] = Subscribed()
    return found


def subscribed(holder: AppContext | AsyncSession) -> frozenset[str]:
    """The event types worth writing deliveries for, as last read: from the context, or
    from the `Subscribed` a session's factory gave it (none: every type, to be safe)."""
    if isinstance(holder, AppContext):
        return subscribed_of(holder).events
    found = holder.info.get(SUBSCRIBED)
    return found.events if isinstance(found, Subscribed) else _EVERY


def join_events(events: Iterable[str]) -> str:
    """The stored form of a subscription's event types (see WebhookSubscription.events)."""
    return "," + ",".join(sorted(set(events))) + ","


def split_events(stored: str) -> list[str]:
    return [e for e in stored.split(",") if e]


async def refresh(ctx: AppContext) -> frozenset[str]:
    """Read which event types are subscribed to (active subscriptions) into the context."""
    return await subscribed_of(ctx).refresh(ctx.engine)


def subscribers_of(event: str) -> Select[Any]:
    """The ids of the active subscriptions that want `event`."""
    return (
        select(SUBSCRIPTIONS.c.id)
        .where(
            SUBSCRIPTIONS.c.paused_at.is_(None),
            SUBSCRIPTIONS.c.events.like(f"%,{event},%"),
        )
        .order_by(SUBSCRIPTIONS.c.id)
    )


def delivery_rows(
    subscription_ids: Sequence[int], event: str, subjects: Sequence[dict[str, Any]], now: datetime
) -> list[dict[str, Any]]:
    """A delivery row per subscription and subject (the row ids an event names:
    supporter_id, message_id, poll_id, channel), due now. Every ingest path builds its
    rows here, so they come out the same."""
    base = {
        "event": event,
        "status": "pending",
        "attempts": 0,
        "due_at": now,
        "created_at": now,
        "supporter_id": None,
        "message_id": None,
        "poll_id": None,
        "rsvp_id": None,
        "channel": None,
        "message_status": None,
    }
    return [
        {**base, **subject, "subscription_id": sid}
        for subject in subjects
        for sid in subscription_ids
    ]


def received(message: Any) -> dict[str, Any]:
    """The subject of `message.received` for a stored inbound message (a row or a
    Message)."""
    return {
        "supporter_id": message.supporter_id,
        "message_id": message.id,
        "channel": message.channel,
    }


def status_changed(message_id: int, channel: str | None, status: str) -> dict[str, Any]:
    """The subject of `message.status`: the message (its supporter is read when sent) and
    the status it moved to."""
    return {"message_id": message_id, "channel": channel, "message_status": status}


async def emit_many(
    session: AsyncSession, event: str, subjects: Sequence[dict[str, Any]], now: datetime
) -> int:
    """Write `event`'s deliveries for `subjects` in `session`'s transaction; how many."""
    if not subjects or event not in subscribed(session):
        return 0
    ids = [int(i) for i in (await session.execute(subscribers_of(event))).scalars()]
    rows = delivery_rows(ids, event, subjects, now)
    if rows:
        await session.execute(insert(DELIVERIES), rows)
    return len(rows)


async def emit(
    session: AsyncSession,
    event: str,
    *,
    now: datetime,
    supporter_id: int | None = None,
    message_id: int | None = None,
    poll_id: int | None = None,
    rsvp_id: int | None = None,
    channel: str | None = None,
) -> int:
    """`emit_many` for one subject."""
    subject = {
        "supporter_id": supporter_id,
        "message_id": message_id,
        "poll_id": poll_id,
        "channel": channel,
    }
    if rsvp_id is not None:
        subject["rsvp_id"] = rsvp_id
    return await emit_many(session, event, [subject], now)
