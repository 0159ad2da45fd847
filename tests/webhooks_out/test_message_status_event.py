"""`message.status`: an outbound message's status changes (sent by the dispatcher,
delivered by a signed Twilio callback, failed) reach a subscribed receiver, once per change;
with no subscription nothing is written, from a check the context keeps in memory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from sqlmodel import select

from channels.base import InvalidRecipient
from routing.webhooks.delivery import deliver_due
from routing.webhooks.events import SUBSCRIBED, Subscribed
from storage.models import WebhookDelivery
from tests.channels.twilio_case import SETTINGS, form, signed_post
from tests.conftest import FakeClock, bearer, new_key
from tests.routing.fake_adapter import (
    FakeAdapter,
    add_supporter,
    make_dispatcher,
    queue,
    sent_message,
)
from tests.webhooks_out.receiver import Receiver, running_receiver, verify

MakeClient = Callable[..., Awaitable[httpx.AsyncClient]]
SID = "SMb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"  # the sid in the status_*.json testdata
PHONE = "+14155550100"


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with running_receiver() as r:
        yield r


@pytest.fixture
async def admin(make_client: MakeClient) -> httpx.AsyncClient:
    client = await make_client(allow_private_webhooks=True, **SETTINGS)
    client.headers.update(bearer(await new_key(client.ctx)))  # type: ignore[attr-defined]
    return client


async def callback(client: httpx.AsyncClient, name: str) -> None:
    request = signed_post(form(name), "/webhooks/twilio/status")
    response = await client.post(request.path, headers=request.headers, content=request.content)
    assert response.status_code == 200, response.text


async def deliveries(client: httpx.AsyncClient) -> list[WebhookDelivery]:
    async with client.ctx.sessions() as session:  # type: ignore[attr-defined]
        return list((await session.exec(select(WebhookDelivery))).all())


async def test_a_delivery_callback_is_told_once(
    admin: httpx.AsyncClient, receiver: Receiver, clock: FakeClock
) -> None:
    ctx = admin.ctx  # type: ignore[attr-defined]
    answer = await admin.post(
        "/api/v1/webhooks", json={"url": receiver.url, "events": ["message.status"]}
    )
    assert answer.status_code == 201, answer.text
    secret = answer.json()["secret"]
    supporter = await add_supporter(ctx, {"sms": PHONE}, name="Dana")
    message_id = await sent_message(ctx, supporter, "sms", PHONE, SID)
    await callback(admin, "status_delivered.json")
    await callback(admin, "status_delivered.json")  # a repeat changes nothing
    await callback(admin, "status_sent.json")  # nor does a late, older status

    assert await deliver_due(ctx, "test") == 1
    (got,) = receiver.received
    assert verify(secret, got.signature, got.body, clock().timestamp())
    assert got.payload["type"] == "message.status"
    data = got.payload["data"]
    assert data["status"] == "delivered" and data["channel"] == "sms"
    assert data["message"]["id"] == message_id and data["message"]["direction"] == "outbound"
    assert data["supporter"] == {"id": supporter, "name": "Dana", "opted_out": False}


async def test_the_dispatcher_tells_sent_and_failed(
    make_client: MakeClient, receiver: Receiver, clock: FakeClock
) -> None:
    client = await make_client(allow_private_webhooks=True)
    ctx = client.ctx  # type: ignore[attr-defined]
    client.headers.update(bearer(await new_key(ctx)))
    sms = FakeAdapter(channels=("sms",), provider="fake-sms")
    ctx.registry.add(sms)
    await client.post("/api/v1/webhooks", json={"url": receiver.url, "events": ["message.status"]})
    ok = await queue(ctx, await add_supporter(ctx, {"sms": PHONE}))
    bad = await queue(ctx, await add_supporter(ctx, {"sms": "+14155550101"}, name="Bo"))
    sms.fail("+14155550101", InvalidRecipient("not a mobile number", code="21614"))
    assert await make_dispatcher(ctx, clock).run_once() == 2
    assert await deliver_due(ctx, "test") == 2
    told = {
        r.payload["data"]["message"]["id"]: r.payload["data"]["status"] for r in receiver.received
    }
    assert told == {ok: "sent", bad: "failed"}


async def test_no_subscription_writes_nothing_and_the_check_lives_in_the_context(
    admin: httpx.AsyncClient,
) -> None:
    ctx = admin.ctx  # type: ignore[attr-defined]
    subscribed = ctx.services[SUBSCRIBED]
    assert isinstance(subscribed, Subscribed) and subscribed.events == frozenset()
    supporter = await add_supporter(ctx, {"sms": PHONE})
    await sent_message(ctx, supporter, "sms", PHONE, SID)
    await callback(admin, "status_delivered.json")
    assert await deliveries(admin) == []
    # Subscribing in this process updates the context's set at once.
    await admin.post(
        "/api/v1/webhooks",
        json={"url": "https://crm.example.org/hook", "events": ["message.status"]},
    )
    assert subscribed.events == frozenset({"message.status"})
