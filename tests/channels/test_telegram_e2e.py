"""Telegram end to end: an Update in, the conversation over the REST API, replies sent by
the dispatcher through python-telegram-bot to the fake Bot API, and a block."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx

from channels.telegram.fake import FakeTelegramApi
from routing.dispatch.dispatcher import Dispatcher
from tests.channels.telegram_case import SETTINGS, TOKEN, load, post
from tests.conftest import FakeClock, bearer, new_key

ClientFactory = Callable[..., Awaitable[httpx.AsyncClient]]
CHAT = "5550001"


async def _webhook(client: httpx.AsyncClient, fixture: str) -> None:
    request = post(load(fixture))
    answer = await client.post(request.path, headers=request.headers, content=request.content)
    assert answer.status_code == 200


async def test_update_in_reply_out_then_blocked(
    make_client: ClientFactory, clock: FakeClock
) -> None:
    fake = FakeTelegramApi(token=TOKEN)
    client = await make_client(transport=fake.transport, **SETTINGS)
    ctx = client.ctx  # type: ignore[attr-defined]
    client.headers.update(bearer(await new_key(ctx)))

    await _webhook(client, "photo_caption")
    [convo] = (await client.get("/api/v1/conversations")).json()["items"]
    supporter_id = convo["supporter_id"]
    supporter = (await client.get(f"/api/v1/supporters/{supporter_id}")).json()
    assert supporter["name"] == "Amina Otieno"
    [inbound] = (await client.get(f"/api/v1/conversations/{convo['id']}/messages")).json()["items"]
    assert (inbound["direction"], inbound["channel"], inbound["body"]) == (
        "inbound",
        "telegram",
        "Flyers are up at the library",
    )
    assert inbound["provider_message_id"] == "910000002"

    long_reply = "Thank you! " + "Here is the plan. " * 300  # 5,411 characters: two parts
    queued = await client.post(
        f"/api/v1/supporters/{supporter_id}/messages", json={"body": long_reply}
    )
    assert queued.status_code == 202, queued.text
    assert queued.json()["channel"] == "telegram"
    await Dispatcher(ctx).run_until_idle()
    sent = fake.sent[CHAT]
    assert len(sent) == 2 and all(len(part) <= 4096 for part in sent)
    assert " ".join(sent).split() == long_reply.split()
    after = (await client.get(f"/api/v1/messages/{queued.json()['id']}")).json()
    assert (after["status"], after["provider_message_id"]) == ("sent", f"{CHAT}:1")

    # The user blocks the bot: Telegram tells us, and the supporter is opted out.
    await _webhook(client, "my_chat_member_kicked")
    supporter = (await client.get(f"/api/v1/supporters/{supporter_id}")).json()
    assert supporter["opted_out"] is True
    clock.advance(seconds=5)
    refused = await client.post(
        f"/api/v1/supporters/{supporter_id}/messages", json={"body": "Still there?"}
    )
    assert refused.status_code == 409, refused.text
    await Dispatcher(ctx).run_until_idle()
    assert fake.sent[CHAT] == sent  # nothing more reached Telegram


async def test_a_block_found_on_send_opts_out(make_client: ClientFactory) -> None:
    fake = FakeTelegramApi(token=TOKEN)
    client = await make_client(transport=fake.transport, **SETTINGS)
    ctx = client.ctx  # type: ignore[attr-defined]
    client.headers.update(bearer(await new_key(ctx)))
    await _webhook(client, "text")
    [convo] = (await client.get("/api/v1/conversations")).json()["items"]
    fake.fail(CHAT, "blocked")
    queued = await client.post(
        f"/api/v1/supporters/{convo['supporter_id']}/messages", json={"body": "Hello?"}
    )
    assert queued.status_code == 202
    await Dispatcher(ctx).run_until_idle()
    message = (await client.get(f"/api/v1/messages/{queued.json()['id']}")).json()
    assert message["status"] == "failed"
    assert message["error_code"] == "403"
    assert fake.sent[CHAT] == []
    supporter = (await client.get(f"/api/v1/supporters/{convo['supporter_id']}")).json()
    assert supporter["opted_out"] is True  # CONTRACT: a Telegram block opts out
