"""No duplicate after a crash where the provider can tell: a dispatcher dies after Twilio
took some messages and before their answers were stored; the next dispatcher asks
Twilio's message list before sending those again, and sends only what Twilio never got."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import httpx

from channels.twilio.fake import FakeTwilio
from routing.dispatch.outcome import INTERRUPTED
from tests.channels.twilio_case import ACCOUNT_SID, AUTH_TOKEN, SETTINGS
from tests.conftest import FakeClock
from tests.routing.fake_adapter import (
    add_supporter,
    attempts_of,
    load,
    make_dispatcher,
    queue,
    until,
)

ClientFactory = Callable[..., Awaitable[httpx.AsyncClient]]


class HangingTwilio:
    """The fake Twilio behind a wire that can hang: for addresses in `after`, Twilio takes
    the message and the answer never comes back; for `before`, the request never reaches it."""

    def __init__(self, fake: FakeTwilio) -> None:
        self.fake = fake
        self.before: set[str] = set()
        self.after: set[str] = set()
        self.hung = 0
        self.release = asyncio.Event()
        self.hang_lookups = False  # the Messages list never answers

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and self.hang_lookups:
            self.hung += 1
            await self.release.wait()
        to = dict(httpx.QueryParams(request.content.decode())).get("To", "")
        if request.method == "POST" and to in self.before:
            self.hung += 1
            await self.release.wait()
        answer = self.fake.handle(request)
        if request.method == "POST" and to in self.after:
            self.hung += 1
            await self.release.wait()
        return answer


async def test_a_send_twilio_took_before_the_crash_is_not_sent_again(
    make_client: ClientFactory, clock: FakeClock
) -> None:
    fake = FakeTwilio(ACCOUNT_SID, AUTH_TOKEN, clock=clock)
    wire = HangingTwilio(fake)
    client = await make_client(transport=httpx.MockTransport(wire), **SETTINGS)
    ctx = client.ctx  # type: ignore[attr-defined]
    phones = [f"+25471300{n:04d}" for n in range(8)]
    ids = [
        await queue(ctx, await add_supporter(ctx, {"sms": p}), f"m{n}")
        for n, p in enumerate(phones)
    ]
    # 0-2 hang after Twilio took them, 3-4 before it got them; 5-7 go through.
    wire.after = set(phones[:3])
    wire.before = set(phones[3:5])

    first = make_dispatcher(ctx, clock, owner="first", concurrency=8)
    crashed = asyncio.create_task(first.run_once(limit=8))

    async def hanging() -> bool:
        recorded = [(await load(ctx, m)).status for m in ids[5:]]
        return wire.hung == 5 and len(fake.sent) == 6 and recorded == ["sent"] * 3

    await until(hanging)
    crashed.cancel()  # the process dies: nothing after this point is stored
    with contextlib.suppress(asyncio.CancelledError):
        await crashed
    wire.after.clear()
    wire.before.clear()

    clock.advance(seconds=61)  # the dead dispatcher's leases run out
    second = make_dispatcher(ctx, clock, owner="second", concurrency=8)
    await second.run_until_idle()

    # One message at Twilio per supporter: 0-2 were found in its list, 3-4 sent now.
    assert sorted(str(m.get("To")) for m in fake.sent) == sorted(phones)
    assert len(fake.list_requests) == 5  # asked only about the interrupted ones
    by_phone = {str(m.get("To")): m.sid for m in fake.sent}
    for phone, message_id in zip(phones, ids, strict=True):
        message = await load(ctx, message_id)
        assert message.status == "sent", phone
        assert message.provider_message_id == by_phone[phone]
    attempts = await attempts_of(ctx, ids[0])
    assert [(a.status, a.error) for a in attempts] == [("failed", INTERRUPTED), ("sent", None)]
    assert attempts[1].provider_message_id == by_phone[phones[0]]


async def test_an_earlier_identical_message_already_recorded_is_not_taken_for_it(
    make_client: ClientFactory, clock: FakeClock
) -> None:
    """The same text to the same person a moment before (recorded, with its id) is not
    mistaken for the interrupted one: that one was never taken, so it is sent."""
    fake = FakeTwilio(ACCOUNT_SID, AUTH_TOKEN, clock=clock)
    wire = HangingTwilio(fake)
    client = await make_client(transport=httpx.MockTransport(wire), **SETTINGS)
    ctx = client.ctx  # type: ignore[attr-defined]
    phone = "+254713009999"
    supporter = await add_supporter(ctx, {"sms": phone})
    earlier = await queue(ctx, supporter, "Thanks, noted!")
    dispatcher = make_dispatcher(ctx, clock, owner="first")
    await dispatcher.run_until_idle()
    assert (await load(ctx, earlier)).status == "sent"

    again = await queue(ctx, supporter, "Thanks, noted!")
    wire.before = {phone}
    crashed = asyncio.create_task(make_dispatcher(ctx, clock, owner="crashing").run_once())

    async def hanging() -> bool:
        return wire.hung == 1

    await until(hanging)
    crashed.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await crashed
    wire.before.clear()
    clock.advance(seconds=61)
    await make_dispatcher(ctx, clock, owner="second").run_until_idle()

    assert len(fake.sent) == 2  # the earlier one and this one, once each
    assert (await load(ctx, again)).provider_message_id == fake.sent[1].sid
    assert (await load(ctx, earlier)).provider_message_id == fake.sent[0].sid


async def test_a_send_taken_before_two_crashes_in_a_row_is_still_found(
    make_client: ClientFactory, clock: FakeClock
) -> None:
    """The second dispatcher dies too, while it asks; the third asks about the earliest
    unanswered try (more than a minute before its own), and finds it."""
    fake = FakeTwilio(ACCOUNT_SID, AUTH_TOKEN, clock=clock)
    wire = HangingTwilio(fake)
    client = await make_client(transport=httpx.MockTransport(wire), **SETTINGS)
    ctx = client.ctx  # type: ignore[attr-defined]
    phone = "+254713007777"
    message_id = await queue(ctx, await add_supporter(ctx, {"sms": phone}), "Vigil at 7")

    async def crash_when(hung: int, owner: str) -> None:
        crashed = asyncio.create_task(make_dispatcher(ctx, clock, owner=owner).run_once())

        async def hanging() -> bool:
            return wire.hung == hung

        await until(hanging)
        crashed.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await crashed

    wire.after = {phone}
    await crash_when(1, "first")  # Twilio took it; the answer was lost
    wire.after.clear()
    clock.advance(seconds=61)
    wire.hang_lookups = True
    await crash_when(2, "second")  # dies while asking Twilio
    wire.hang_lookups = False
    clock.advance(seconds=61)
    await make_dispatcher(ctx, clock, owner="third").run_until_idle()

    assert len(fake.sent) == 1
    assert (await load(ctx, message_id)).provider_message_id == fake.sent[0].sid
