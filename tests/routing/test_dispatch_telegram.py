"""The dispatcher through the real Telegram adapter, against the fake Bot API at the wire."""

from __future__ import annotations

from datetime import timedelta

from channels.telegram.fake import FakeTelegramApi
from routing.context import AppContext
from tests.conftest import FakeClock
from tests.routing.fake_adapter import (
    add_supporter,
    attempts_of,
    load,
    make_dispatcher,
    outbox_of,
    queue,
)

CHAT = "4242"
TELEGRAM = {"telegram_bot_token": "123456:TEST-token", "telegram_webhook_secret": "s3cret"}


async def test_throttle_then_one_delivery_through_the_bot_api(
    make_client, clock: FakeClock
) -> None:
    api = FakeTelegramApi()
    client = await make_client(transport=api.transport, **TELEGRAM)
    ctx: AppContext = client.ctx
    assert "telegram" in ctx.registry.enabled_channels
    sid = await add_supporter(ctx, {"telegram": CHAT})
    mid = await queue(ctx, sid, "see you Saturday")
    api.fail(CHAT, "throttle", retry_after=7)
    dispatcher = make_dispatcher(ctx, clock)

    assert await dispatcher.run_once() == 1
    item = await outbox_of(ctx, mid)
    assert item is not None and item.due_at == clock() + timedelta(seconds=7)
    clock.set(item.due_at)
    assert await dispatcher.run_once() == 1

    assert api.sent[CHAT] == ["see you Saturday"]
    message = await load(ctx, mid)
    assert message.status == "sent" and message.provider_message_id
    attempts = await attempts_of(ctx, mid)
    assert [a.status for a in attempts] == ["failed", "sent"]
    assert attempts[0].error_code is not None or "retry" in (attempts[0].error or "").lower()


async def test_blocked_bot_opts_out_through_the_bot_api(make_client, clock: FakeClock) -> None:
    api = FakeTelegramApi()
    client = await make_client(transport=api.transport, **TELEGRAM)
    ctx: AppContext = client.ctx
    sid = await add_supporter(ctx, {"telegram": CHAT})
    first = await queue(ctx, sid, "one")
    second = await queue(ctx, sid, "two")
    api.fail(CHAT, "blocked")
    dispatcher = make_dispatcher(ctx, clock)
    assert await dispatcher.run_once(limit=1) == 1
    assert await dispatcher.run_once() == 1
    assert (await load(ctx, first)).status == "failed"
    assert (await load(ctx, second)).status == "skipped"
    assert api.sent[CHAT] == []


async def test_one_message_a_second_per_chat(make_client, clock: FakeClock) -> None:
    api = FakeTelegramApi()
    client = await make_client(transport=api.transport, **TELEGRAM)
    ctx: AppContext = client.ctx
    sid = await add_supporter(ctx, {"telegram": CHAT})
    other = await add_supporter(ctx, {"telegram": "777"}, name="Bo")
    for n in range(3):
        await queue(ctx, sid, f"m{n}")
    await queue(ctx, other, "hi")
    start = clock()
    assert await make_dispatcher(ctx, clock, concurrency=1).run_once(limit=10) == 4
    assert api.sent[CHAT] == ["m0", "m1", "m2"]
    assert api.sent["777"] == ["hi"]
    # Three to one chat at 1/s need two seconds of waiting; the other chat none extra.
    assert clock() - start == timedelta(seconds=2)
