"""POST /api/v1/supporters/{id}/messages: a one-on-one is queued with its outbox row, or
refused with 409 saying why (nothing queued)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import func
from sqlmodel import select

from channels.base import Channel
from storage.models import Message, OutboxItem, Supporter, SupporterAddress
from tests.conftest import FakeClock, bearer, new_key
from tests.routing.fake_adapter import FakeAdapter

API = "/api/v1"
MakeClient = Callable[..., Awaitable[httpx.AsyncClient]]


async def admin_client(make_client: MakeClient, *channels: Channel) -> httpx.AsyncClient:
    client = await make_client()
    ctx = client.ctx  # type: ignore[attr-defined]
    if channels:
        ctx.registry.add(FakeAdapter(channels=channels, provider="recording"))
    client.headers.update(bearer(await new_key(ctx)))
    return client


async def supporter(client: httpx.AsyncClient, **body: Any) -> int:
    body.setdefault("name", "Amina")
    body.setdefault(
        "addresses",
        [
            {"channel": "sms", "address": "+14155550100"},
            {"channel": "whatsapp", "address": "+14155550100"},
        ],
    )
    response = await client.post(f"{API}/supporters", json=body)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def counts(client: httpx.AsyncClient) -> tuple[int, int]:
    async with client.ctx.sessions() as session:  # type: ignore[attr-defined]
        messages = (await session.exec(select(func.count()).select_from(Message))).one()
        outbox = (await session.exec(select(func.count()).select_from(OutboxItem))).one()
    return int(messages), int(outbox)


async def test_no_channel_configured_is_409_and_queues_nothing(make_client: MakeClient) -> None:
    client = await admin_client(make_client)
    sid = await supporter(client)
    response = await client.post(f"{API}/supporters/{sid}/messages", json={"body": "Hello"})
    assert response.status_code == 409
    assert "not configured" in response.json()["detail"]
    assert await counts(client) == (0, 0)


async def test_one_on_one_is_queued_with_its_outbox_row(
    make_client: MakeClient, clock: FakeClock
) -> None:
    client = await admin_client(make_client, "sms", "whatsapp")
    sid = await supporter(client)
    response = await client.post(f"{API}/supporters/{sid}/messages", json={"body": "Hello Amina"})
    assert response.status_code == 202, response.text
    message = response.json()
    # WhatsApp comes first in the default order but its 24 h window is closed: sms it is.
    assert message["status"] == "queued"
    assert message["channel"] == "sms"
    assert message["direction"] == "outbound"
    assert message["kind"] == "one_on_one"
    assert message["segments"] == 1
    assert "whatsapp" in message["channel_choice"]["skipped"]
    assert message["attempts"] == [] and message["history"] == []
    async with client.ctx.sessions() as session:  # type: ignore[attr-defined]
        item = (await session.exec(select(OutboxItem))).one()
        assert item.message_id == message["id"]
        assert item.priority == 0
        row = await session.get(Supporter, sid)
        assert row is not None
        assert row.last_one_on_one_at == clock()
        assert row.last_outbound_at == clock()
    assert await counts(client) == (1, 1)
    detail = await client.get(f"{API}/messages/{message['id']}")
    assert detail.status_code == 200
    assert detail.json()["body"] == "Hello Amina"
    assert detail.json()["sent_by"].startswith("key:")
    stats = (await client.get(f"{API}/supporters/{sid}")).json()["stats"]
    assert stats["one_on_ones"] == 1


async def test_requested_channel_must_be_eligible(
    make_client: MakeClient, clock: FakeClock
) -> None:
    client = await admin_client(make_client, "sms", "whatsapp", "email")
    sid = await supporter(client)
    closed = await client.post(
        f"{API}/supporters/{sid}/messages", json={"body": "hi", "channel": "whatsapp"}
    )
    assert closed.status_code == 409
    assert "whatsapp" in closed.json()["detail"] and "window" in closed.json()["detail"]
    no_address = await client.post(
        f"{API}/supporters/{sid}/messages", json={"body": "hi", "channel": "email"}
    )
    assert no_address.status_code == 409
    assert "no address" in no_address.json()["detail"]
    off = await client.post(
        f"{API}/supporters/{sid}/messages", json={"body": "hi", "channel": "telegram"}
    )
    assert off.status_code == 409
    assert "not configured" in off.json()["detail"]
    assert await counts(client) == (0, 0)
    # Once the supporter writes on WhatsApp the window opens and the same request is queued.
    async with client.ctx.sessions() as session:  # type: ignore[attr-defined]
        row = (
            await session.exec(
                select(SupporterAddress).where(SupporterAddress.channel == "whatsapp")
            )
        ).one()
        row.last_inbound_at = clock() - timedelta(hours=1)
        session.add(row)
        await session.commit()
    opened = await client.post(
        f"{API}/supporters/{sid}/messages", json={"body": "hi", "channel": "whatsapp"}
    )
    assert opened.status_code == 202
    assert opened.json()["channel"] == "whatsapp"
    assert await counts(client) == (1, 1)


async def test_opted_out_supporter_is_409(make_client: MakeClient) -> None:
    client = await admin_client(make_client, "sms")
    sid = await supporter(client)
    async with client.ctx.sessions() as session:  # type: ignore[attr-defined]
        row = await session.get(Supporter, sid)
        assert row is not None
        row.opted_out = True
        session.add(row)
        await session.commit()
    response = await client.post(f"{API}/supporters/{sid}/messages", json={"body": "hi"})
    assert response.status_code == 409
    assert "opted out" in response.json()["detail"]
    assert await counts(client) == (0, 0)


async def test_body_length_is_validated(make_client: MakeClient) -> None:
    client = await admin_client(make_client, "sms")
    sid = await supporter(client)
    for body in ("", "x" * 10_001):
        response = await client.post(f"{API}/supporters/{sid}/messages", json={"body": body})
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "body.body"
    unknown = await client.post(
        f"{API}/supporters/{sid}/messages", json={"body": "x", "channel": "fax"}
    )
    assert unknown.status_code == 422
    assert (
        await client.post(f"{API}/supporters/999/messages", json={"body": "x"})
    ).status_code == 404
    assert await counts(client) == (0, 0)


async def test_a_one_on_one_is_conversation_activity(
    make_client: MakeClient, clock: FakeClock
) -> None:
    client = await admin_client(make_client, "sms")
    sid = await supporter(client)
    clock.advance(hours=3)
    response = await client.post(f"{API}/supporters/{sid}/messages", json={"body": "Hi"})
    assert response.status_code == 202
    [convo] = (await client.get(f"{API}/conversations?supporter_id={sid}")).json()["items"]
    assert convo["last_message_at"].startswith(clock().strftime("%Y-%m-%dT%H:%M:%S"))
