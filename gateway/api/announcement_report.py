"""How an announcement is doing: its messages counted by status and channel (from the
counters kept as messages change, never by counting them), and its first failures."""

from __future__ import annotations

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.announcement_counts import read_counts
from storage.models import ErasedDelivery, Message

MAX_FAILURES = 100
REACHED = ("sent", "delivered", "read")
FAILED = ("failed", "undelivered")
NO_CHANNEL = "none"  # skipped (opted out) or unreachable: no channel was chosen


class Failure(BaseModel):
    message_id: int
    supporter_id: int
    channel: str | None
    status: str
    error: str | None


class DeliveryReport(BaseModel):
    counts: dict[str, int]
    by_channel: dict[str, dict[str, int]]
    segments: int
    failures: list[Failure]
    fallback_on_silence: int = Field(
        0, description="messages sent again over a second channel after `fallback_after`"
    )
    reached_on_fallback: int = Field(
        0, description="of those, the ones the second channel took (sent, delivered or read)"
    )


async def delivery_report(session: AsyncSession, announcement_id: int) -> DeliveryReport:
    """Read from the counters the triggers keep (storage/announcement_counts.py) and the
    erased messages' counts; the failures from their index, by id."""
    live = await read_counts(session, announcement_id)
    # Messages erased with their supporter still count (routing/people/erasure.py).
    erased = (
        await session.execute(
            select(
                col(ErasedDelivery.status),
                col(ErasedDelivery.channel),
                col(ErasedDelivery.count),
                col(ErasedDelivery.segments),
            ).where(col(ErasedDelivery.announcement_id) == announcement_id)
        )
    ).all()
    counts: dict[str, int] = {}
    by_channel: dict[str, dict[str, int]] = {}
    rows = [(row.status, row.channel, row.n) for row in live]
    for status, channel, n in [*rows, *((s, c, n) for s, c, n, _ in erased)]:
        counts[status] = counts.get(status, 0) + n
        per = by_channel.setdefault(channel or NO_CHANNEL, {})
        per[status] = per.get(status, 0) + n
    segments = sum(row.segments for row in live if row.channel == "sms")
    return DeliveryReport(
        fallback_on_silence=sum(row.fallback for row in live),
        reached_on_fallback=sum(row.fallback for row in live if row.status in REACHED),
        counts=counts,
        by_channel=by_channel,
        segments=segments + sum(int(seg) for *_, seg in erased),
        failures=await first_failures(session, announcement_id),
    )


async def first_failures(session: AsyncSession, announcement_id: int) -> list[Failure]:
    """The first MAX_FAILURES failed or undelivered messages by id: one walk of
    ix_messages_announcement_status per status, merged (an IN would sort them all)."""
    found: list[Failure] = []
    for status in FAILED:
        rows = await session.execute(
            select(
                col(Message.id),
                col(Message.supporter_id),
                col(Message.channel),
                col(Message.status),
                col(Message.error),
            )
            .where(col(Message.announcement_id) == announcement_id, col(Message.status) == status)
            .order_by(col(Message.id))
            .limit(MAX_FAILURES)
        )
        found += [
            Failure(message_id=i, supporter_id=s, channel=c, status=st, error=e)
            for i, s, c, st, e in rows
        ]
    return sorted(found, key=lambda failure: failure.message_id)[:MAX_FAILURES]
