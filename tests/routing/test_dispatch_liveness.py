"""A dead dispatcher's rows are taken over at once: on the same host as soon as its
process is gone, elsewhere once it stops beating, never waiting out its leases."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from routing.context import AppContext
from routing.dispatch.dispatcher import Dispatcher
from routing.dispatch.liveness import DISPATCHERS, STALE_SECONDS, Liveness
from routing.dispatch.outcome import INTERRUPTED
from routing.dispatch.ratelimit import PACING
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


def gone_pid() -> int:
    """The pid of a process that has exited."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait(timeout=30)
    return process.pid


async def registered(ctx: AppContext) -> list[str]:
    async with ctx.sessions() as session:
        return sorted((await session.execute(select(DISPATCHERS.c.owner))).scalars())


async def crash_holding(
    ctx: AppContext, clock: FakeClock, sms: FakeAdapter, phones: list[str], first: Dispatcher
) -> None:
    """`first` claims every row, Twilio-like sends hang, and it dies."""
    sms.hold_before_accept = set(phones)
    await first.liveness.register()
    crashed = asyncio.create_task(first.run_once())

    async def held() -> bool:
        return sms.held == len(phones)

    await until(held)
    crashed.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await crashed
    sms.hold_before_accept.clear()


async def sent(ctx: AppContext, ids: list[int]) -> bool:
    return all([(await load(ctx, m)).status == "sent" for m in ids])


async def test_a_dispatcher_whose_process_is_gone_is_taken_over_as_the_next_starts(
    make_client, clock: FakeClock
) -> None:
    sms = FakeAdapter(channels=("sms",), provider="fake-sms")
    _, ctx = await with_adapters(make_client, sms)
    phones = [f"+1415555070{n}" for n in range(5)]
    ids = [await queue(ctx, await add_supporter(ctx, {"sms": p})) for p in phones]
    dead = Liveness(ctx, "first", pid=gone_pid())
    await crash_holding(
        ctx, clock, sms, phones, make_dispatcher(ctx, clock, owner="first", liveness=dead)
    )

    second = make_dispatcher(ctx, clock, owner="second")
    await second.start()  # the clock does not move: no lease has run out
    try:
        await until(lambda: sent(ctx, ids))
    finally:
        await second.stop()
    for phone in phones:
        assert len(sms.sent_to(phone)) == 1
    attempts = await attempts_of(ctx, ids[0])
    assert [(a.status, a.error) for a in attempts] == [("failed", INTERRUPTED), ("sent", None)]
    assert await registered(ctx) == []  # the dead one forgotten, the second unregistered


async def test_a_dispatcher_elsewhere_is_taken_over_once_it_stops_beating(
    make_client, clock: FakeClock
) -> None:
    sms = FakeAdapter(channels=("sms",), provider="fake-sms")
    _, ctx = await with_adapters(make_client, sms)
    phones = [f"+1415555080{n}" for n in range(3)]
    ids = [await queue(ctx, await add_supporter(ctx, {"sms": p})) for p in phones]
    # Another host: its pid means nothing here, only its heartbeats count.
    elsewhere = Liveness(ctx, "first", host="another-host", alive=lambda pid: False)
    await crash_holding(
        ctx, clock, sms, phones, make_dispatcher(ctx, clock, owner="first", liveness=elsewhere)
    )

    second = make_dispatcher(ctx, clock, owner="second", beat_seconds=0.01)
    await second.start()
    try:
        clock.advance(seconds=STALE_SECONDS - 1)
        await elsewhere.beat()  # still alive: nothing is taken from it
        for _ in range(5):
            await second.liveness.beat()
            assert await second.liveness.take_over_dead() == 0
        assert await registered(ctx) == ["first", "second"]
        assert not await sent(ctx, ids)

        clock.advance(seconds=STALE_SECONDS + 1)  # silent for longer than STALE_SECONDS
        await until(lambda: sent(ctx, ids))  # well before its 60 s leases ran out
    finally:
        await second.stop()
    assert clock() - (await load(ctx, ids[0])).created_at < timedelta(seconds=60)
    for phone in phones:
        assert len(sms.sent_to(phone)) == 1
    async with ctx.sessions() as session:
        assert (
            await session.execute(select(func.count()).select_from(DISPATCHERS))
        ).scalar_one() == 0


async def test_running_dispatchers_share_each_senders_rate(make_client, clock: FakeClock) -> None:
    sms = FakeAdapter(channels=("sms",), provider="fake-sms", rate_per_second=10)
    _, ctx = await with_adapters(make_client, sms)
    one = make_dispatcher(ctx, clock, owner="one", beat_seconds=0.01)
    two = make_dispatcher(ctx, clock, owner="two", beat_seconds=0.01)

    def shares(a: float, b: float) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            return (one.limits.share, two.limits.share) == (a, b)

        return check

    await one.start()
    try:
        assert one.limits.share == 1.0
        await two.start()
        try:
            assert two.limits.share == 0.5  # at once: it joined two
            assert two.rounds == 0  # and waits a beat before its first claim
            await until(shares(0.5, 0.5))  # the first slows down at its next beat
            bucket = one.limits.sender("fake-sms:sms", 10)
            assert bucket is not None and bucket.rate == pytest.approx(10 * PACING / 2)
        finally:
            await two.stop()
        await until(shares(1.0, 0.5))  # alone again: the whole rate
    finally:
        await one.stop()
