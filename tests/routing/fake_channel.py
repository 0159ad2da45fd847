"""An in-test adapter that makes channels "configured" and records what it is asked to send."""

from __future__ import annotations

import itertools

from sqlmodel import col, select

from channels.base import Channel, InboundMessage
from routing.context import AppContext
from routing.inbound.store import ingest
from storage.models import Message, OutboxItem, Supporter, SupporterAddress
from tests.routing.fake_adapter import FakeAdapter

ALL: tuple[Channel, ...] = ("sms", "whatsapp", "telegram", "email")


def FakeChannel(channels: tuple[Channel, ...] = ALL, provider: str = "fake") -> FakeAdapter:
    """Every channel "configured", sends recorded (see FakeAdapter)."""
    return FakeAdapter(channels=channels, provider=provider)


ADDRESSES: dict[Channel, str] = {
    "sms": "+14155550100",
    "whatsapp": "+14155550101",
    "telegram": "777000111",
    "email": "ada@example.org",
}
_counter = itertools.count(1)


def inbound(body: str, channel: Channel = "sms", address: str | None = None) -> InboundMessage:
    """An inbound message with a fresh provider id, as an adapter's parse would give it."""
    return InboundMessage(
        channel=channel,
        address=address or ADDRESSES[channel],
        provider_message_id=f"in-{next(_counter)}",
        body=body,
    )


async def say(
    ctx: AppContext, body: str, channel: Channel = "sms", address: str | None = None
) -> int:
    """Ingest one inbound message; the stored message id."""
    report = await ingest(ctx, [inbound(body, channel, address)])
    assert len(report.stored) == 1
    return report.stored[0]


async def outbound(ctx: AppContext, kind: str | None = None) -> list[Message]:
    async with ctx.sessions() as session:
        query = select(Message).where(Message.direction == "outbound")
        if kind is not None:
            query = query.where(Message.kind == kind)
        return list((await session.exec(query.order_by(col(Message.id)))).all())


async def outbox_message_ids(ctx: AppContext) -> set[int]:
    async with ctx.sessions() as session:
        return set((await session.exec(select(OutboxItem.message_id))).all())


async def supporter_by_address(ctx: AppContext, channel: str, address: str) -> Supporter:
    async with ctx.sessions() as session:
        row = (
            await session.exec(
                select(SupporterAddress).where(
                    SupporterAddress.channel == channel, SupporterAddress.address == address
                )
            )
        ).one()
        supporter = await session.get(Supporter, row.supporter_id)
        assert supporter is not None
        return supporter
