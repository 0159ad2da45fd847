"""Which events exist, who subscribes to them, and writing their deliveries.

A delivery row is written in the transaction of the change it reports (an outbox), so an
event is never told that did not happen and never lost once it did. Emitting is cheap when
nobody listens: each process keeps the set of event types some subscription wants, per
database (`subscribed`), refreshed when this process changes a subscription and by the
delivery loop every `REFRESH_SECONDS` (another process's new subscription is heard from
within that time). A stale set can only be too large, costing one indexed query.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import WebhookDelivery, WebhookSubscription

# The events a subscription may ask for. (`message.status` joins them when the status
# paths emit it: routing/delivery/.)
EVENT_TYPES = (
    "message.received",
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

_SUBSCRIBED: dict[str, frozenset[str]] = {}


def _key(engine: AsyncEngine | Any) -> str:
    return str(engine.url)


def subscribed(engine: AsyncEngine | Any) -> frozenset[str]:
    """The event types some subscription on this database wants, as last read here."""
    return _SUBSCRIBED.get(_key(engine), frozenset())


def join_events(events: Iterable[str]) -> str:
    """The stored form of a subscription's event types (see WebhookSubscription.events)."""
    return "," + ",".join(sorted(set(events))) + ","


def split_events(stored: str) -> list[str]:
    return [e for e in stored.split(",") if e]


async def refresh(engine: AsyncEngine) -> frozenset[str]:
    """Read which event types are subscribed to (active subscriptions) into the cache."""
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(SUBSCRIPTIONS.c.events).where(SUBSCRIPTIONS.c.paused_at.is_(None))
        )
        wanted = frozenset(e for (stored,) in rows for e in split_events(stored))
    _SUBSCRIBED[_key(engine)] = wanted
    return wanted


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


async def emit_many(
    session: AsyncSession, event: str, subjects: Sequence[dict[str, Any]], now: datetime
) -> int:
    """Write `event`'s deliveries for `subjects` in `session`'s transaction; how many."""
    if not subjects or event not in subscribed(session.bind):
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
