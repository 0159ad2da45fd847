"""Token buckets on an injected clock; the dispatcher keeping a sender's rate."""

from __future__ import annotations

from datetime import timedelta

from gateway.context import AppContext
from routing.ratelimit import GUARD_WINDOW, PACING, TokenBucket
from tests.conftest import FakeClock
from tests.routing.fake_adapter import (
    FakeAdapter,
    add_supporter,
    load,
    make_dispatcher,
    outbox_of,
    queue,
)


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
    client = await make_client()
    ctx: AppContext = client.ctx
    sms = FakeAdapter(channels=("sms",), provider="fake-sms", rate_per_second=5, clock=clock)
    ctx.registry.add(sms)
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
    client = await make_client()
    ctx: AppContext = client.ctx
    sms = FakeAdapter(channels=("sms",), provider="fake-sms", rate_per_second=0.1)
    ctx.registry.add(sms)
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
    item = await outbox_of(ctx, ids[2])
    assert item is not None and item.lease_owner is None and item.attempts == 0
    waited = (item.due_at - start).total_seconds()
    assert abs(waited - 2 / (0.1 * PACING)) < 0.01
    clock.set(item.due_at)
    assert await dispatcher.run_once() == 1
    assert (await load(ctx, ids[2])).status == "sent"
