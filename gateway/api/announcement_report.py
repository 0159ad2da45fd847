"""How an announcement is doing: its messages counted by status and channel, and failures."""

from __future__ import annotations

from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import ErasedDelivery, Message

MAX_FAILURES = 100
REACHED = ("sent", "delivered", "read")
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
    mine = col(Message.announcement_id) == announcement_id
    grouped = await session.execute(
        select(col(Message.status), col(Message.channel), func.count())
        .where(mine)
        .group_by(col(Message.status), col(Message.channel))
    )
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
    for status, channel, n in [*grouped, *((s, c, n) for s, c, n, _ in erased)]:
        counts[status] = counts.get(status, 0) + n
        per = by_channel.setdefault(channel or NO_CHANNEL, {})
        per[status] = per.get(status, 0) + n
    segments = (
        await session.execute(
            select(func.coalesce(func.sum(col(Message.segments)), 0)).where(
                mine, col(Message.channel) == "sms"
            )
        )
    ).scalar_one()
    failed = await session.execute(
        select(
            col(Message.id),
            col(Message.supporter_id),
            col(Message.channel),
            col(Message.status),
            col(Message.error),
        )
        .where(mine, col(Message.status).in_(("failed", "undelivered")))
        .order_by(col(Message.id))
        .limit(MAX_FAILURES)
    )
    silence = (
        await session.execute(
            select(col(Message.status), func.count())
            .where(mine, col(Message.fallback_from).is_not(None))
            .group_by(col(Message.status))
        )
    ).all()
    return DeliveryReport(
        fallback_on_silence=sum(n for _, n in silence),
        reached_on_fallback=sum(n for status, n in silence if status in REACHED),
        counts=counts,
        by_channel=by_channel,
        segments=int(segments) + sum(int(seg) for *_, seg in erased),
        failures=[
            Failure(message_id=i, supporter_id=s, channel=c, status=st, error=e)
            for i, s, c, st, e in failed
        ],
    )
