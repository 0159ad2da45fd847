"""Rate units: Twilio meters an SMS sender in segments a second, so a long SMS takes its
segments from the sender's rate; WhatsApp and Telegram count messages. Through the real
adapters, against their fakes at the wire, on virtual time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from urllib.parse import parse_qsl

import httpx
import pytest

from channels.sms_segments import sms_segments
from channels.telegram.fake import FakeTelegramApi
from channels.twilio.fake import FakeTwilio
from routing.context import AppContext
from routing.dispatch.dispatcher import Dispatcher
from routing.dispatch.ratelimit import GUARD_WINDOW, PACING, RateLimits
from tests.channels.twilio_case import ACCOUNT_SID, AUTH_TOKEN, SETTINGS
from tests.conftest import FakeClock
from tests.routing.fake_adapter import add_supporter, load, queue
from tests.routing.test_ratelimit import Ticker, VirtualTime

TELEGRAM = {"telegram_bot_token": "123456:TEST-token", "telegram_webhook_secret": "s3cret"}
LONG = (
    "Canvass this Saturday at 10am from the library steps. Bring water, a charged phone "
    "and comfortable shoes; we pair newcomers with a regular. "
) * 3  # GSM-7, 3 segments
SHORT = "Canvass Saturday, 10am"


def windows_hold_at_most(limit: int, sends: list[tuple[float, int]]) -> bool:
    """Whether no GUARD_WINDOW (so no second either) of sends holds more than `limit` units."""
    return all(
        sum(units for t, units in sends if start <= t < start + GUARD_WINDOW) <= limit
        for start, _ in sends
    )


async def test_the_guard_counts_every_unit_of_a_send() -> None:
    # Bunched late sends of 3 units each: a window of 10 takes three of them, not ten.
    ticker = Ticker()
    bucket = RateLimits(clock=ticker, sleep=ticker.sleep).sender("sms", 10)
    assert bucket is not None
    sent = []
    for _ in range(7):
        await bucket.guard(3)
        sent.append((ticker.now, 3))
    assert [t for t, _ in sent] == [0.0] * 3 + [GUARD_WINDOW] * 3 + [2 * GUARD_WINDOW]
    assert windows_hold_at_most(10, sent)


async def test_a_send_above_the_burst_and_the_window_still_goes() -> None:
    # 15 units at 10 a second: more than the bucket (1) and a window (10) ever hold. It
    # never waits for 15 tokens a bucket of 1 cannot hold: it waits for a full bucket and
    # an empty window, goes alone in its window, and the next send waits off its debt.
    clock = VirtualTime()  # bounded: a send that waited forever would fail, not hang
    limits = RateLimits(clock=clock, sleep=clock.sleep)
    bucket = limits.sender("sms", 10)
    assert bucket is not None
    rate = 10 * PACING
    sent = []

    async def send(units: int) -> None:
        assert await limits.take([(bucket, units)], max_wait=60) == 0.0
        sent.append(clock())

    for units in (15, 1, 15):
        await clock.drive(send(units))
    # The second waits off the first's 15; the third waits until the second's unit has
    # left its window (the bucket alone would have let it go 1/rate after it).
    assert sent == pytest.approx([0.0, 15 / rate, 15 / rate + GUARD_WINDOW])
    # One that would wait longer than the lease allows is postponed by that wait, and
    # takes nothing.
    wait = bucket.delay_for(15)
    assert wait > 0.5
    assert await limits.take([(bucket, 15)], max_wait=0.5) == pytest.approx(wait)
    assert bucket.delay_for(15) == pytest.approx(wait)


@pytest.mark.parametrize(
    ("units", "tokens"), [(1, 1), (2, 2), (3, 10 / 3), (4, 5), (5, 5), (10, 10), (15, 15)]
)
def test_a_send_takes_its_share_of_the_window(units: int, tokens: float) -> None:
    # At 10 a second a window fits three sends of 3 units: each takes a third of it.
    bucket = RateLimits().sender("sms", 10)
    assert bucket is not None
    assert bucket.tokens_for(units) == pytest.approx(tokens)


def stamped(
    handler: Callable[[httpx.Request], httpx.Response], clock: VirtualTime
) -> tuple[httpx.MockTransport, list[tuple[float, httpx.Request]]]:
    """A transport to `handler` that notes when each request reached the wire."""
    seen: list[tuple[float, httpx.Request]] = []

    def stamp(request: httpx.Request) -> httpx.Response:
        seen.append((clock(), request))
        return handler(request)

    return httpx.MockTransport(stamp), seen


async def send_all(ctx: AppContext, clock: VirtualTime, count: int) -> None:
    limits = RateLimits(clock=clock, sleep=clock.sleep)
    dispatcher = Dispatcher(ctx, limits=limits, concurrency=count, random=lambda: 1.0)
    assert await clock.drive(dispatcher.run_once(limit=count)) == count


def twilio_units(request: httpx.Request) -> int:
    """What Twilio counts of this Messages API request: an SMS's segments, else one."""
    form = dict(parse_qsl(request.content.decode()))
    if form["To"].startswith("whatsapp:") or "MediaUrl" in form:
        return 1
    return sms_segments(form["Body"])


@pytest.mark.parametrize(
    ("channel", "body", "units", "spacing"),
    [
        # Three 3-segment SMS fit a window of 10: 2.94 a second, 8.8 segments a second (a
        # fourth within the second would make 12).
        ("sms", LONG, 3, 10 / 3),
        ("sms", SHORT, 1, 1),
        ("whatsapp", LONG, 1, 1),
    ],
)
async def test_twilio_sends_are_paced_by_the_units_twilio_counts(
    make_client, clock: FakeClock, channel: str, body: str, units: int, spacing: float
) -> None:
    vt = VirtualTime()
    twilio = FakeTwilio(ACCOUNT_SID, AUTH_TOKEN)
    transport, seen = stamped(twilio.handle, vt)
    client = await make_client(transport=transport, **{**SETTINGS, "twilio_rate_per_second": 10})
    ctx: AppContext = client.ctx
    ids = []
    for n in range(12):
        phone = f"+1415555{n:04d}"
        sid = await add_supporter(ctx, {channel: phone}, name=f"S{n}", last_inbound_at=clock())
        ids.append(await queue(ctx, sid, body))
    await send_all(ctx, vt, 12)

    assert [(await load(ctx, i)).status for i in ids] == ["sent"] * 12
    sends = [(t, twilio_units(request)) for t, request in seen]
    assert [u for _, u in sends] == [units] * 12
    assert windows_hold_at_most(10, sends)
    # Evenly spaced at the bucket's pace, none held back by the guard (so none waits past
    # the lease its token wait was bounded by); never over 10 units a second overall.
    times = [t for t, _ in sends]
    assert times == pytest.approx([n * spacing / (10 * PACING) for n in range(12)])
    assert 11 * units / (times[-1] - times[0]) <= 10


async def test_telegram_counts_messages(make_client) -> None:
    vt = VirtualTime()
    api = FakeTelegramApi()
    transport, seen = stamped(api.handler, vt)
    client = await make_client(transport=transport, **TELEGRAM, telegram_rate_per_second=10)
    ctx: AppContext = client.ctx
    for n in range(12):
        sid = await add_supporter(ctx, {"telegram": str(1000 + n)}, name=f"S{n}")
        await queue(ctx, sid, LONG)
    await send_all(ctx, vt, 12)

    times = [t for t, request in seen if request.url.path.endswith("/sendMessage")]
    assert times == pytest.approx([n / (10 * PACING) for n in range(12)])


async def test_an_sms_longer_than_a_seconds_rate_still_goes(make_client, clock: FakeClock) -> None:
    # Twilio's default of one segment a second (a US long code): every 3-segment SMS is
    # more than the bucket and the window hold. Each goes; the next waits its 3 seconds.
    vt = VirtualTime()
    twilio = FakeTwilio(ACCOUNT_SID, AUTH_TOKEN)
    transport, seen = stamped(twilio.handle, vt)
    client = await make_client(transport=transport, **SETTINGS)
    ctx: AppContext = client.ctx
    ids = []
    for n in range(3):
        sid = await add_supporter(ctx, {"sms": f"+1415555{n:04d}"}, name=f"S{n}")
        ids.append(await queue(ctx, sid, LONG))
    await send_all(ctx, vt, 3)

    assert [(await load(ctx, i)).status for i in ids] == ["sent"] * 3
    assert [t for t, _ in seen] == pytest.approx([0.0, 3 / PACING, 6 / PACING])


async def test_mixed_sizes_never_wait_past_the_lease_in_the_guard() -> None:
    """3- and 8-unit sends at 10 a second never share a window (3 + 8 > 10), so the guard
    lets them go slower than the bucket hands out slots. Forty taken at once must each go
    within `max_wait` or be postponed, never queue in the guard past their lease."""
    clock = VirtualTime()
    limits = RateLimits(clock=clock, sleep=clock.sleep)
    bucket = limits.sender("sms", 10)
    assert bucket is not None
    max_wait = 5.0
    sent: list[tuple[float, int]] = []
    postponed: list[float] = []

    async def send(units: int) -> None:
        asked = clock()
        postpone = await limits.take([(bucket, units)], max_wait=max_wait)
        assert clock() - asked <= max_wait + 1e-9
        if postpone:
            postponed.append(postpone)
        else:
            sent.append((clock(), units))

    async def all_at_once() -> None:
        await asyncio.gather(*(send(3 if i % 2 else 8) for i in range(40)))

    await clock.drive(all_at_once())
    assert sent and postponed  # some went, the rest were handed back to be rescheduled
    assert len(sent) + len(postponed) == 40
    assert all(p > 0 for p in postponed)
    assert windows_hold_at_most(10, sent)
