"""Crash recovery: a dispatcher dies mid-batch; after its leases expire a new one
delivers every message, and nothing whose provider id was stored goes twice."""

from __future__ import annotations

import asyncio
import contextlib

from sqlmodel import col, func, select

from routing.context import AppContext
from routing.dispatch.outcome import INTERRUPTED
from storage.models import Message, OutboxItem
from tests.conftest import FakeClock
from tests.routing.fake_adapter import (
    FakeAdapter,
    add_supporter,
    attempts_of,
    load,
    make_dispatcher,
    queue,
    until,
    with_adapters,
)


async def count_sent(ctx: AppContext) -> int:
    async with ctx.sessions() as session:
        query = select(func.count()).select_from(Message).where(Message.status == "sent")
        return int((await session.exec(query)).one())


async def test_cancelled_mid_batch_then_recovered_after_lease_expiry(
    make_client, clock: FakeClock
) -> None:
    sms = FakeAdapter(channels=("sms",), provider="fake-sms")
    _, ctx = await with_adapters(make_client, sms)
    phones = [f"+1415555040{n}" for n in range(10)]
    ids = []
    for n, phone in enumerate(phones):
        sid = await add_supporter(ctx, {"sms": phone}, name=f"S{n}")
        ids.append(await queue(ctx, sid, f"m{n}"))
    # 7 and 8 hang before the provider accepts; 9 hangs after it accepted (and before
    # we stored its id): the at-least-once window.
    sms.hold_before_accept = {phones[7], phones[8]}
    sms.hold_after_accept = {phones[9]}

    first = make_dispatcher(ctx, clock, owner="first", concurrency=10)
    crashed = asyncio.create_task(first.run_once(limit=10))

    async def settled() -> bool:
        return sms.held == 3 and await count_sent(ctx) == 7

    await until(settled)
    crashed.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await crashed
    sms.hold_before_accept.clear()
    sms.hold_after_accept.clear()

    second = make_dispatcher(ctx, clock, owner="second", concurrency=10)
    assert await second.run_once() == 0  # the dead dispatcher's leases still hold
    clock.advance(seconds=61)
    assert await second.run_once() == 3

    for message_id in ids:
        assert (await load(ctx, message_id)).status == "sent"
    async with ctx.sessions() as session:
        assert (await session.exec(select(col(OutboxItem.id)))).all() == []
    for phone in phones[:9]:
        assert len(sms.sent_to(phone)) == 1, phone
    # Accepted but not recorded: sent again, and the first attempt says what happened.
    assert len(sms.sent_to(phones[9])) == 2
    attempts = await attempts_of(ctx, ids[9])
    assert [(a.status, a.error) for a in attempts] == [("failed", INTERRUPTED), ("sent", None)]
    stored = (await load(ctx, ids[9])).provider_message_id
    assert stored == attempts[1].provider_message_id
