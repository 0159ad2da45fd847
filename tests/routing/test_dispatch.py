"""The dispatcher against the fake adapter: retries, backoff, fallback, consent."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from channels.base import (
    ChannelMisconfigured,
    InvalidRecipient,
    ProviderUnavailable,
    RecipientOptedOut,
    Throttled,
)
from routing.context import AppContext
from storage.models import ConsentEvent, Supporter, SupporterAddress
from tests.conftest import FakeClock
from tests.routing.fake_adapter import (
    FakeAdapter,
    add_supporter,
    attempts_of,
    events_of,
    load,
    make_dispatcher,
    outbox_of,
    queue,
    with_adapters,
)

PHONE = "+14155550100"
EMAIL = "ada@example.org"


async def setup(make_client, **overrides) -> tuple[AppContext, FakeAdapter, FakeAdapter]:  # type: ignore[no-untyped-def]
    sms = FakeAdapter(channels=("sms",), provider="fake-sms")
    email = FakeAdapter(channels=("email",), provider="fake-email")
    _, ctx = await with_adapters(make_client, sms, email, **overrides)
    return ctx, sms, email


async def test_retry_then_success_sends_exactly_once(make_client, clock: FakeClock) -> None:
    ctx, sms, _ = await setup(make_client)
    sid = await add_supporter(ctx, {"sms": PHONE})
    mid = await queue(ctx, sid)
    sms.fail(PHONE, ProviderUnavailable("503"))
    dispatcher = make_dispatcher(ctx, clock)

    assert await dispatcher.run_once() == 1
    message = await load(ctx, mid)
    assert message.status == "queued"
    item = await outbox_of(ctx, mid)
    assert item is not None and item.attempts == 1 and item.lease_owner is None
    assert item.due_at == clock() + timedelta(seconds=2)  # first step, jitter at its top

    assert await dispatcher.run_once() == 0  # not due yet
    clock.advance(seconds=2)
    assert await dispatcher.run_once() == 1

    message = await load(ctx, mid)
    assert message.status == "sent"
    assert len(sms.accepted) == 1
    assert message.provider_message_id == sms.accepted[0][0]
    assert message.sent_at == clock()
    assert [(a.status, a.provider_message_id) for a in await attempts_of(ctx, mid)] == [
        ("failed", None),
        ("sent", message.provider_message_id),
    ]
    assert await outbox_of(ctx, mid) is None
    assert ("sms", "sent") in await events_of(ctx, mid)
    assert await dispatcher.run_once() == 0
    assert len(sms.calls) == 2


async def test_backoff_doubles_and_honours_larger_retry_after(
    make_client, clock: FakeClock
) -> None:
    ctx, sms, _ = await setup(make_client)
    sid = await add_supporter(ctx, {"sms": PHONE})
    mid = await queue(ctx, sid)
    sms.fail(PHONE, ProviderUnavailable(), ProviderUnavailable(), Throttled(retry_after=30))
    dispatcher = make_dispatcher(ctx, clock)
    waits = []
    for _ in range(3):
        start = clock()
        assert await dispatcher.run_once() == 1
        item = await outbox_of(ctx, mid)
        assert item is not None
        waits.append((item.due_at - start).total_seconds())
        clock.set(item.due_at)
    assert waits == [2.0, 4.0, 30.0]  # 8 s would be next; the provider asked for 30
    assert await dispatcher.run_once() == 1
    assert (await load(ctx, mid)).status == "sent"


async def test_max_attempts_then_fallback(make_client, clock: FakeClock) -> None:
    ctx, sms, email = await setup(make_client, max_attempts=3)
    sid = await add_supporter(ctx, {"sms": PHONE, "email": EMAIL})
    mid = await queue(ctx, sid)
    sms.fail(PHONE, *(ProviderUnavailable() for _ in range(5)))
    dispatcher = make_dispatcher(ctx, clock)
    for _ in range(3):
        assert await dispatcher.run_once() == 1
        clock.advance(minutes=6)
    message = await load(ctx, mid)
    assert (message.status, message.channel) == ("queued", "email")
    assert await dispatcher.run_once() == 1
    message = await load(ctx, mid)
    assert (message.status, message.channel) == ("sent", "email")
    assert len(sms.calls) == 3 and len(email.accepted) == 1
    assert [(a.channel, a.status) for a in await attempts_of(ctx, mid)] == [
        ("sms", "failed"),
        ("sms", "failed"),
        ("sms", "failed"),
        ("email", "sent"),
    ]


async def test_permanent_failure_falls_back_to_next_channel(make_client, clock: FakeClock) -> None:
    ctx, sms, email = await setup(make_client)
    sid = await add_supporter(ctx, {"sms": PHONE, "email": EMAIL})
    mid = await queue(ctx, sid)
    assert (await load(ctx, mid)).channel == "sms"
    sms.fail(PHONE, InvalidRecipient("landline", code="30006"))
    dispatcher = make_dispatcher(ctx, clock)

    assert await dispatcher.run_once() == 1
    message = await load(ctx, mid)
    assert (message.channel, message.address, message.status) == ("email", EMAIL, "queued")
    assert len(sms.calls) == 1 and not email.calls  # no retry of a permanent error
    assert await dispatcher.run_once() == 1

    message = await load(ctx, mid)
    assert (message.channel, message.status) == ("email", "sent")
    attempts = await attempts_of(ctx, mid)
    assert [(a.channel, a.status, a.error_code) for a in attempts] == [
        ("sms", "failed", "30006"),
        ("email", "sent", None),
    ]
    assert await events_of(ctx, mid) == [
        ("sms", "failed"),
        ("email", "queued"),
        ("email", "sent"),
    ]


async def test_no_channel_left_fails_with_reason(make_client, clock: FakeClock) -> None:
    ctx, sms, _ = await setup(make_client)
    sid = await add_supporter(ctx, {"sms": PHONE})
    mid = await queue(ctx, sid)
    sms.fail(PHONE, ChannelMisconfigured("sender not allowed", code="21606"))
    assert await make_dispatcher(ctx, clock).run_once() == 1
    message = await load(ctx, mid)
    assert message.status == "failed"
    assert message.error is not None
    assert "sender not allowed" in message.error and "no address" in message.error
    assert await outbox_of(ctx, mid) is None
    assert (await events_of(ctx, mid))[-1] == ("sms", "failed")


async def test_opted_out_after_queueing_is_skipped_and_never_sent(
    make_client, clock: FakeClock
) -> None:
    ctx, sms, _ = await setup(make_client)
    sid = await add_supporter(ctx, {"sms": PHONE})
    mid = await queue(ctx, sid)
    async with ctx.sessions() as session:
        supporter = await session.get(Supporter, sid)
        assert supporter is not None
        supporter.opted_out = True
        session.add(supporter)
        await session.commit()
    assert await make_dispatcher(ctx, clock).run_once() == 1
    message = await load(ctx, mid)
    assert (message.status, message.error) == ("skipped", "opted out")
    assert sms.calls == [] and await outbox_of(ctx, mid) is None
    assert await attempts_of(ctx, mid) == []


async def test_telegram_block_opts_out_and_sends_nothing_more(
    make_client, clock: FakeClock
) -> None:
    telegram = FakeAdapter(channels=("telegram",), provider="fake-telegram")
    sms = FakeAdapter(channels=("sms",), provider="fake-sms")
    _, ctx = await with_adapters(make_client, telegram, sms)
    sid = await add_supporter(ctx, {"telegram": "4242", "sms": PHONE})
    mid = await queue(ctx, sid)
    other = await queue(ctx, sid, "second")
    telegram.fail("4242", RecipientOptedOut("bot was blocked by the user", code="403"))
    dispatcher = make_dispatcher(ctx, clock)
    assert await dispatcher.run_once(limit=1) == 1

    message = await load(ctx, mid)
    assert message.status == "failed" and "opted out" in (message.error or "")
    async with ctx.sessions() as session:
        supporter = await session.get(Supporter, sid)
        assert supporter is not None and supporter.opted_out
        row = (
            await session.exec(
                select(SupporterAddress).where(SupporterAddress.channel == "telegram")
            )
        ).one()
        assert row.opted_out
        consent = (await session.exec(select(ConsentEvent))).all()
        assert [(c.action, c.channel) for c in consent] == [("opt_out", "telegram")]
    assert await dispatcher.run_once() == 1
    assert (await load(ctx, other)).status == "skipped"
    assert sms.calls == [] and len(telegram.calls) == 1


async def test_whatsapp_window_rechecked_at_send_time(make_client, clock: FakeClock) -> None:
    whatsapp = FakeAdapter(channels=("whatsapp",), provider="fake-whatsapp")
    sms = FakeAdapter(channels=("sms",), provider="fake-sms")
    _, ctx = await with_adapters(make_client, whatsapp, sms)
    sid = await add_supporter(
        ctx, {"whatsapp": PHONE, "sms": PHONE}, last_inbound_at=clock() - timedelta(hours=23)
    )
    mid = await queue(ctx, sid)
    templated = await queue(ctx, sid, template={"name": "checkin", "language": "es"})
    assert (await load(ctx, mid)).channel == "whatsapp"
    clock.advance(hours=2)  # the window closed while the messages waited
    assert await make_dispatcher(ctx, clock).run_once() == 2

    message = await load(ctx, mid)
    assert (message.channel, message.status) == ("sms", "queued")
    assert [(a.channel, a.status) for a in await attempts_of(ctx, mid)] == [("whatsapp", "failed")]
    assert [m.message_id for m in whatsapp.calls] == [templated]
    template = whatsapp.calls[0].template
    assert template is not None and (template.name, template.language) == ("checkin", "es")


async def test_window_closed_from_provider_falls_back(make_client, clock: FakeClock) -> None:
    from channels.base import WindowClosed

    whatsapp = FakeAdapter(channels=("whatsapp",), provider="fake-whatsapp")
    sms = FakeAdapter(channels=("sms",), provider="fake-sms")
    _, ctx = await with_adapters(make_client, whatsapp, sms)
    sid = await add_supporter(ctx, {"whatsapp": PHONE, "sms": PHONE}, last_inbound_at=clock())
    mid = await queue(ctx, sid)
    whatsapp.fail(PHONE, WindowClosed("outside window", code="63016"))
    dispatcher = make_dispatcher(ctx, clock)
    assert await dispatcher.run_once() == 1
    assert await dispatcher.run_once() == 1
    message = await load(ctx, mid)
    assert (message.channel, message.status) == ("sms", "sent")
    assert len(whatsapp.calls) == 1 and len(sms.accepted) == 1


async def test_replies_go_before_announcements(make_client, clock: FakeClock) -> None:
    ctx, sms, _ = await setup(make_client)
    bulk = []
    for n in range(3):
        sid = await add_supporter(ctx, {"sms": f"+1415555020{n}"}, name=f"S{n}")
        bulk.append(await queue(ctx, sid, kind="announcement", priority=1))
    clock.advance(seconds=1)
    sid = await add_supporter(ctx, {"sms": PHONE})
    reply = await queue(ctx, sid, kind="one_on_one", priority=0)
    dispatcher = make_dispatcher(ctx, clock)
    while await dispatcher.run_once(limit=1):
        pass
    assert [m.message_id for m in sms.calls] == [reply, *bulk]


async def test_fallback_is_visible_through_the_api(make_client, clock: FakeClock) -> None:
    from tests.conftest import bearer, new_key

    sms = FakeAdapter(channels=("sms",), provider="fake-sms")
    email = FakeAdapter(channels=("email",), provider="fake-email")
    client, ctx = await with_adapters(make_client, sms, email)
    client.headers.update(bearer(await new_key(ctx)))
    sid = await add_supporter(ctx, {"sms": PHONE, "email": EMAIL})
    queued = await client.post(f"/api/v1/supporters/{sid}/messages", json={"body": "hi"})
    assert queued.status_code == 202, queued.text
    mid = queued.json()["id"]
    assert queued.json()["channel"] == "sms"
    sms.fail(PHONE, InvalidRecipient("unreachable", code="30003"))
    dispatcher = make_dispatcher(ctx, clock)
    assert await dispatcher.run_until_idle() == 2

    shown = (await client.get(f"/api/v1/messages/{mid}")).json()
    assert (shown["channel"], shown["status"]) == ("email", "sent")
    assert shown["provider_message_id"] == email.accepted[0][0]
    assert [(a["channel"], a["status"]) for a in shown["attempts"]] == [
        ("sms", "failed"),
        ("email", "sent"),
    ]
    assert [(h["channel"], h["status"]) for h in shown["history"]] == [
        ("sms", "failed"),
        ("email", "queued"),
        ("email", "sent"),
    ]


async def test_stop_confirmation_still_reaches_an_opted_out_supporter(
    make_client, clock: FakeClock
) -> None:
    ctx, sms, _ = await setup(make_client)
    sid = await add_supporter(ctx, {"sms": PHONE})
    async with ctx.sessions() as session:
        supporter = await session.get(Supporter, sid)
        assert supporter is not None
        supporter.opted_out = True
        session.add(supporter)
        await session.commit()
    confirm = await queue(ctx, sid, "You are unsubscribed", kind="consent", allow_opted_out=True)
    assert await make_dispatcher(ctx, clock).run_once() == 1
    assert (await load(ctx, confirm)).status == "sent"
    assert [m.body for m in sms.calls] == ["You are unsubscribed"]
