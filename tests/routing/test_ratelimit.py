"""Token buckets on an injected clock; the dispatcher keeping a sender's rate."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TypeVar

from channels.base import OutboundMessage, SendResult
from routing.context import AppContext
from routing.dispatch.dispatcher import Dispatcher
from routing.dispatch.ratelimit import GUARD_WINDOW, PACING, RETAKE, RateLimits, TokenBucket
from tests.conftest import FakeClock
from tests.routing.fake_adapter import (
    FakeAdapter,
    add_supporter,
    attempts_of,
    load,
    make_dispatcher,
    outbox_of,
    queue,
    unrecorded,
    with_adapters,
)

T = TypeVar("T")


class Ticker:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


async def test_bucket_allows_burst_then_holds_the_rate() -> None:
    ticker = Ticker()
    bucket = TokenBucket(2.0, burst=2, clock=ticker, sleep=ticker.sleep)
    for _ in range(10):
        await bucket.acquire()
    # Two from the burst, then eight at two a second.
    assert ticker.now == 4.0
    assert ticker.slept == [0.5] * 8


async def test_concurrent_takers_each_reserve_their_own_slot() -> None:
    ticker = Ticker()
    bucket = TokenBucket(4.0, burst=1, clock=ticker, sleep=ticker.sleep)
    waits = [bucket.reserve() for _ in range(5)]
    assert waits == [0.0, 0.25, 0.5, 0.75, 1.0]


async def test_guard_keeps_bunched_late_sends_within_the_rate() -> None:
    # After an event-loop stall, sends whose slots passed all wake at once: the guard on
    # actual send times still lets no window of GUARD_WINDOW hold more than the rate.
    ticker = Ticker()
    bucket = TokenBucket(3.0, burst=1, window_limit=3, clock=ticker, sleep=ticker.sleep)
    sent = []
    for _ in range(7):
        await bucket.guard()
        sent.append(ticker.now)
    assert sent[:3] == [0.0, 0.0, 0.0]
    assert sent[3:6] == [GUARD_WINDOW] * 3
    assert sent[6] == 2 * GUARD_WINDOW
    for i, start in enumerate(sent):
        assert len([t for t in sent[i:] if t < start + GUARD_WINDOW]) <= 3


async def test_reserve_refuses_a_wait_longer_than_allowed() -> None:
    ticker = Ticker()
    bucket = TokenBucket(0.1, burst=1, clock=ticker, sleep=ticker.sleep)
    assert bucket.reserve(max_wait=15) == 0.0
    assert bucket.reserve(max_wait=15) == 10.0
    assert bucket.reserve(max_wait=15) is None  # 20 s: not taken
    ticker.now += 10
    assert bucket.reserve(max_wait=15) == 10.0


async def test_dispatcher_keeps_the_configured_rate(make_client, clock: FakeClock) -> None:
    sms = FakeAdapter(channels=("sms",), provider="fake-sms", rate_per_second=5, clock=clock)
    _, ctx = await with_adapters(make_client, sms)
    for n in range(20):
        sid = await add_supporter(ctx, {"sms": f"+141555502{n:02d}"}, name=f"S{n}")
        await queue(ctx, sid)
    start = clock()
    dispatcher = make_dispatcher(ctx, clock, concurrency=1)
    assert await dispatcher.run_once(limit=20) == 20
    assert len(sms.accepted) == 20
    # No burst, paced 2% under the rate: 20 sends take 19 / 4.9 s; no second holds more than 5.
    assert timedelta(seconds=3.8) < clock() - start < timedelta(seconds=3.9)
    offsets = [(t - start).total_seconds() for t in sms.call_times]
    for tenth in range(40):
        window_start = tenth / 10
        in_window = [o for o in offsets if window_start <= o < window_start + 1]
        assert len(in_window) <= 5


async def test_rate_limit_reschedules_rather_than_hold_a_lease(
    make_client, clock: FakeClock
) -> None:
    sms = FakeAdapter(channels=("sms",), provider="fake-sms", rate_per_second=0.1)
    _, ctx = await with_adapters(make_client, sms)
    ids = []
    for n in range(3):
        sid = await add_supporter(ctx, {"sms": f"+1415555030{n}"}, name=f"S{n}")
        ids.append(await queue(ctx, sid))
    start = clock()
    # A 30 s lease keeps 15 s for the send itself, so a token may be waited for 15 s.
    dispatcher = make_dispatcher(ctx, clock, concurrency=3, lease_seconds=30)
    assert await dispatcher.run_once(limit=3) == 3
    # First now, second after ~10 s (paced 2% under); the third would wait ~20 s: rescheduled.
    assert [(await load(ctx, i)).status for i in ids] == ["sent", "sent", "queued"]
    # The third goes back without an attempt, and nothing is left in doubt.
    assert [len(await attempts_of(ctx, i)) for i in ids] == [1, 1, 0]
    assert await unrecorded(ctx) == 0
    item = await outbox_of(ctx, ids[2])
    assert item is not None and item.lease_owner is None and item.attempts == 0
    waited = (item.due_at - start).total_seconds()
    assert abs(waited - 2 / (0.1 * PACING)) < 0.01
    clock.set(item.due_at)
    assert await dispatcher.run_once() == 1
    assert (await load(ctx, ids[2])).status == "sent"


class VirtualTime:
    """A float clock for many sleepers at once: every sleep is a timer, and `drive` fires
    them in deadline order, each once what is ready has run, so tasks woken together see
    one instant. The first sleep also costs `stall` seconds of its caller's own step, as a
    blocking stretch of the event loop does (a full garbage collection, a cold import)."""

    def __init__(self, stall: float = 0.0) -> None:
        self.now = 0.0
        self.stall = stall
        self._timers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        deadline = self.now + seconds
        self.now += self.stall
        self.stall = 0.0
        timer: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._timers, (deadline, next(self._order), timer))
        await timer

    async def drive(self, work: Awaitable[T]) -> T:
        task = asyncio.ensure_future(work)
        for _ in range(100_000):  # bounded
            if task.done():
                break
            for _ in range(20):
                await asyncio.sleep(0)  # what is ready runs at this instant
            if self._timers:
                deadline, _, timer = heapq.heappop(self._timers)
                self.now = max(self.now, deadline)
                if not timer.done():
                    timer.set_result(None)
        return await asyncio.wait_for(task, 30)  # bounded


@dataclass
class EntryStampingAdapter(FakeAdapter):
    """Stamps each send as it enters the adapter, before its first await."""

    ticker: Callable[[], float] = float
    entries: list[float] = field(default_factory=list)

    async def send(self, message: OutboundMessage) -> SendResult:
        self.entries.append(self.ticker())
        return await super().send(message)


async def test_a_stall_after_the_guard_does_not_bunch_sends(make_client) -> None:
    # The guard counts a send in the step that hands it to the adapter: a stall of the
    # event loop can delay the send and its count together, never one without the other.
    client = await make_client()
    ctx: AppContext = client.ctx
    ticker = VirtualTime(stall=0.3)
    sms = EntryStampingAdapter(
        channels=("sms",), provider="fake-sms", rate_per_second=5, ticker=ticker
    )
    ctx.registry.add(sms)
    for n in range(20):
        sid = await add_supporter(ctx, {"sms": f"+141555504{n:02d}"}, name=f"S{n}")
        await queue(ctx, sid)
    limits = RateLimits(clock=ticker, sleep=ticker.sleep)
    dispatcher = Dispatcher(ctx, limits=limits, concurrency=20, random=lambda: 1.0)
    assert await ticker.drive(dispatcher.run_once(limit=20)) == 20
    assert len(sms.accepted) == 20
    assert sms.entries[0] == 0.0  # counted, then sent, before the stall
    for i, start in enumerate(sms.entries):
        assert len([t for t in sms.entries[i:] if t < start + GUARD_WINDOW]) <= 5


async def test_a_send_that_waited_on_a_replaced_bucket_takes_again() -> None:
    """When this process's share of a sender's rate changes (another dispatcher joined),
    sends already waiting for a slot of the old bucket take one from the new bucket,
    which keeps the old one's recent sends in its window."""
    now = [100.0]
    limits: RateLimits

    async def sleep(seconds: float) -> None:
        limits.share = 0.5  # a second dispatcher joined while this send waited
        limits.sender("twilio:+15005550006", 10)
        now[0] += seconds

    limits = RateLimits(clock=lambda: now[0], sleep=sleep)
    old = limits.sender("twilio:+15005550006", 10)
    assert old is not None
    assert await limits.take([(old, 1)], max_wait=10) == 0.0  # the first goes at once
    assert await limits.take([(old, 1)], max_wait=10) == RETAKE  # the second waited
    new = limits.sender("twilio:+15005550006", 10)
    assert new is not None and new is not old and old.retired and not new.retired
    assert new.rate == 10 * PACING / 2
    assert new.delay_for(1) > 0  # no free slot at once after the switch
    assert len(new._recent) == 1  # the first send still counts in the window
