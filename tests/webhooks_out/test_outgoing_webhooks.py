"""Outgoing webhooks end to end: subscriptions made through the API, events set off by
signed provider webhooks and API calls, deliveries sent by the delivery loop to a real
HTTP receiver on 127.0.0.1 that checks every signature with its own HMAC code."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from sqlmodel import select

from gateway.app import create_app, shutdown
from routing.webhooks.delivery import (
    GIVE_UP_AFTER,
    WebhookDeliverer,
    backoff,
    claim,
    deliver_due,
)
from storage.models import WebhookDelivery
from tests.channels.twilio_case import SETTINGS, signed_post, sms_form
from tests.conftest import FakeClock, bearer, make_settings, new_key
from tests.webhooks_out.receiver import Receiver, running_receiver, verify

MakeClient = Callable[..., Awaitable[httpx.AsyncClient]]
ALL = [
    "message.received",
    "supporter.created",
    "supporter.opted_out",
    "supporter.opted_in",
    "poll.answered",
]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with running_receiver() as r:
        yield r


@pytest.fixture
async def admin(make_client: MakeClient) -> httpx.AsyncClient:
    client = await make_client(allow_private_webhooks=True, **SETTINGS)
    client.headers.update(bearer(await new_key(client.ctx)))  # type: ignore[attr-defined]
    return client


async def subscribe(client: httpx.AsyncClient, url: str, events: list[str]) -> dict[str, str]:
    response = await client.post("/api/v1/webhooks", json={"url": url, "events": events})
    assert response.status_code == 201, response.text
    body: dict[str, str] = response.json()
    return body


async def text_in(client: httpx.AsyncClient, sid: str, sender: str, body: str) -> None:
    request = signed_post(sms_form(sid, sender, body))
    response = await client.request(
        request.method, request.path, headers=request.headers, content=request.content
    )
    assert response.status_code == 200, response.text


async def test_each_event_is_signed_and_delivered_once(
    admin: httpx.AsyncClient, receiver: Receiver, clock: FakeClock
) -> None:
    ctx = admin.ctx  # type: ignore[attr-defined]
    hook = await subscribe(admin, receiver.url, ALL)
    assert hook["secret"].startswith("whsec_") and hook["events"] == sorted(ALL)
    listed = (await admin.get(f"/api/v1/webhooks/{hook['id']}")).json()
    assert "secret" not in listed and listed["url"] == receiver.url

    created = await admin.post(
        "/api/v1/supporters",
        json={"name": "Ada", "addresses": [{"channel": "sms", "address": "+14155550101"}]},
    )
    assert created.status_code == 201, created.text
    await text_in(admin, "SM" + "1" * 32, "+14155550101", "see you saturday")
    await text_in(admin, "SM" + "2" * 32, "+14155550101", "STOP")
    await text_in(admin, "SM" + "3" * 32, "+14155550101", "START")
    await text_in(admin, "SM" + "1" * 32, "+14155550101", "see you saturday")  # a retry

    assert await deliver_due(ctx, "test") == 6
    assert await deliver_due(ctx, "test") == 0  # each once
    # Sent concurrently: in any order, each with its delivery id.
    receiver.received.sort(key=lambda r: int(r.payload["id"].removeprefix("dlv_")))
    assert receiver.events() == [
        "supporter.created",
        "message.received",
        "message.received",
        "supporter.opted_out",
        "message.received",
        "supporter.opted_in",
    ]
    for got in receiver.received:
        assert verify(hook["secret"], got.signature, got.body, clock().timestamp())
        assert not verify("whsec_wrong", got.signature, got.body, clock().timestamp())
    first = receiver.received[1].payload
    assert first["id"].startswith("dlv_") and first["created_at"].startswith("2026-03-04")
    assert first["data"]["message"]["body"] == "see you saturday"
    assert first["data"]["supporter"]["name"] == "Ada"
    assert receiver.received[3].payload["data"]["channel"] == "sms"
    log = (await admin.get(f"/api/v1/webhooks/{hook['id']}/deliveries")).json()["items"]
    assert [d["status"] for d in log] == ["delivered"] * 6
    assert {d["response_status"] for d in log} == {200} and log[0]["event"] == "supporter.opted_in"


async def test_a_failure_is_retried_with_backoff_then_delivered(
    admin: httpx.AsyncClient, receiver: Receiver, clock: FakeClock
) -> None:
    ctx = admin.ctx  # type: ignore[attr-defined]
    hook = await subscribe(admin, receiver.url, ["message.received"])
    receiver.answers = [500, 503]
    await text_in(admin, "SM" + "4" * 32, "+14155550102", "hello")
    assert await deliver_due(ctx, "test") == 1
    clock.advance(seconds=29)
    assert await deliver_due(ctx, "test") == 0  # not due before 30 s
    clock.advance(seconds=1)
    assert await deliver_due(ctx, "test") == 1
    clock.advance(seconds=59)
    assert await deliver_due(ctx, "test") == 0  # then 60 s
    clock.advance(seconds=1)
    assert await deliver_due(ctx, "test") == 1
    assert len(receiver.received) == 3
    assert len({r.payload["id"] for r in receiver.received}) == 1  # the same event each time
    (row,) = (await admin.get(f"/api/v1/webhooks/{hook['id']}/deliveries")).json()["items"]
    assert (row["status"], row["attempts"], row["response_status"]) == ("delivered", 3, 200)


async def test_a_subscriber_failing_for_a_day_is_paused_and_a_test_event_resumes_it(
    admin: httpx.AsyncClient, receiver: Receiver, clock: FakeClock
) -> None:
    ctx = admin.ctx  # type: ignore[attr-defined]
    hook = await subscribe(admin, receiver.url, ["message.received"])
    receiver.default = 500
    await text_in(admin, "SM" + "5" * 32, "+14155550103", "hello")
    start = clock()
    attempts = 0
    while clock() - start <= GIVE_UP_AFTER + backoff(99):
        attempts += await deliver_due(ctx, "test")
        clock.advance(seconds=backoff(max(attempts, 1)).total_seconds())
    got = (await admin.get(f"/api/v1/webhooks/{hook['id']}")).json()
    assert got["paused_at"] is not None
    assert "every delivery failed for 24 h" in got["paused_reason"]
    assert "HTTP 500" in got["paused_reason"]
    (row,) = (await admin.get(f"/api/v1/webhooks/{hook['id']}/deliveries")).json()["items"]
    assert row["status"] == "failed" and row["next_attempt_at"] is None
    assert 20 < row["attempts"] == attempts < 40  # backed off up to an hour apart
    # Paused: nothing more is written or sent for it.
    await text_in(admin, "SM" + "6" * 32, "+14155550103", "again")
    tried = len(receiver.received)
    assert await deliver_due(ctx, "test") == 0 and len(receiver.received) == tried

    receiver.default = 204
    test = await admin.post(f"/api/v1/webhooks/{hook['id']}/test")
    assert test.status_code == 200, test.text
    assert (test.json()["event"], test.json()["status"]) == ("webhook.test", "delivered")
    assert receiver.received[-1].payload["type"] == "webhook.test"
    assert verify(
        hook["secret"],
        receiver.received[-1].signature,
        receiver.received[-1].body,
        clock().timestamp(),
    )
    assert (await admin.get(f"/api/v1/webhooks/{hook['id']}")).json()["paused_at"] is None
    await text_in(admin, "SM" + "7" * 32, "+14155550103", "back")
    assert await deliver_due(ctx, "test") == 1


async def test_a_failing_test_event_says_why(admin: httpx.AsyncClient, receiver: Receiver) -> None:
    hook = await subscribe(admin, receiver.url, ["poll.answered"])
    receiver.answers = [418]
    test = (await admin.post(f"/api/v1/webhooks/{hook['id']}/test")).json()
    assert (test["status"], test["response_status"], test["last_error"]) == (
        "failed",
        418,
        "HTTP 418",
    )
    assert (await admin.post("/api/v1/webhooks/999/test")).status_code == 404


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.org/hook",
        "hook",
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://[::ffff:192.168.0.1]/hook",
    ],
)
async def test_private_or_bad_urls_are_refused(client: httpx.AsyncClient, url: str) -> None:
    response = await client.post("/api/v1/webhooks", json={"url": url, "events": ["poll.answered"]})
    assert response.status_code == 422, response.text
    assert (await client.get("/api/v1/webhooks")).json()["items"] == []


async def test_bad_subscriptions_and_roles(client: httpx.AsyncClient, receiver: Receiver) -> None:
    for body in (
        {"url": "https://example.org/h", "events": []},
        {"url": "https://example.org/h", "events": ["nope"]},
        {"events": ["poll.answered"]},
    ):
        assert (await client.post("/api/v1/webhooks", json=body)).status_code == 422
    coordinator = await new_key(client.ctx, "coordinator")  # type: ignore[attr-defined]
    listed = await client.get("/api/v1/webhooks", headers=bearer(coordinator))
    assert listed.status_code == 403
    assert (await client.delete("/api/v1/webhooks/5")).status_code == 404


async def test_a_crash_between_write_and_delivery_loses_nothing(
    settings_url: str, receiver: Receiver, clock: FakeClock, tmp_path: object
) -> None:
    def app() -> tuple[httpx.AsyncClient, object]:
        settings = make_settings(settings_url, allow_private_webhooks=True, **SETTINGS)
        built = create_app(settings, clock=clock)
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=built), base_url="https://rallypoint.example.org"
        )
        return client, built.state.ctx

    first, ctx = app()
    first.headers.update(bearer(await new_key(ctx)))  # type: ignore[arg-type]
    await subscribe(first, receiver.url, ["message.received"])
    await text_in(first, "SM" + "8" * 32, "+14155550104", "hello")
    assert await claim(ctx, "crashed") != []  # claimed, then the process dies: never sent
    await first.aclose()
    await shutdown(ctx)  # type: ignore[arg-type]

    second, ctx2 = app()
    try:
        assert await deliver_due(ctx2, "next") == 0  # the dead process's lease holds a while
        clock.advance(seconds=61)
        assert await deliver_due(ctx2, "next") == 1
        assert receiver.events() == ["message.received"]
        async with ctx2.sessions() as session:  # type: ignore[attr-defined]
            row = (await session.exec(select(WebhookDelivery))).one()
        assert row.status == "delivered"
    finally:
        await second.aclose()
        await shutdown(ctx2)  # type: ignore[arg-type]


@pytest.fixture
def settings_url(database_url: str) -> str:
    return database_url


async def test_the_background_loop_delivers(admin: httpx.AsyncClient, receiver: Receiver) -> None:
    ctx = admin.ctx  # type: ignore[attr-defined]
    arrived = asyncio.Event()
    receiver.on_receive = arrived.set
    loop = WebhookDeliverer(ctx, poll_seconds=0.01)
    await loop.start()
    try:
        await subscribe(admin, receiver.url, ["message.received"])
        await text_in(admin, "SM" + "9" * 32, "+14155550105", "hello")
        await asyncio.wait_for(arrived.wait(), 10)
    finally:
        await loop.stop()
    assert receiver.events() == ["message.received"]
