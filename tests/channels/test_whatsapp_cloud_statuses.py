"""WhatsApp Cloud API status webhooks: parsed statuses and their effect on stored messages."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import httpx
import pytest
from sqlmodel import select

from channels.base import (
    InvalidRecipient,
    SendError,
    StatusUpdate,
    Throttled,
    WindowClosed,
)
from channels.whatsapp_cloud.webhook import parse_notification
from storage.models import (
    Message,
    MessageAttempt,
    MessageStatusEvent,
    PendingStatus,
)
from tests.channels.whatsapp_cloud_case import (
    ACCESS_TOKEN,
    APP_SECRET,
    PHONE_NUMBER_ID,
    VERIFY_TOKEN,
    payload,
    sign,
)
from tests.routing.fake_adapter import add_supporter, sent_message

ClientFactory = Callable[..., Awaitable[httpx.AsyncClient]]
SETTINGS_NO_BASE = {
    "whatsapp_access_token": ACCESS_TOKEN,
    "whatsapp_phone_number_id": PHONE_NUMBER_ID,
    "whatsapp_app_secret": APP_SECRET,
    "whatsapp_verify_token": VERIFY_TOKEN,
}


def wamid_in(filename: str) -> str:
    data = json.loads(payload(filename))
    return str(data["entry"][0]["changes"][0]["value"]["statuses"][0]["id"])


def parse(body: bytes) -> list[object]:
    return list(parse_notification(body, PHONE_NUMBER_ID))


@pytest.mark.parametrize(
    ("filename", "status", "code", "failure"),
    [
        ("status_sent.json", "sent", None, None),
        ("status_delivered.json", "delivered", None, None),
        ("status_read.json", "read", None, None),
        ("status_failed_131047.json", "failed", "131047", WindowClosed),
        ("status_failed_131026.json", "failed", "131026", InvalidRecipient),
    ],
)
def test_status_payloads_parse(
    filename: str, status: str, code: str | None, failure: type[SendError] | None
) -> None:
    [update] = parse(payload(filename))
    assert isinstance(update, StatusUpdate)
    assert update.channel == "whatsapp"
    assert update.provider_message_id == wamid_in(filename)
    assert update.status == status
    assert update.error_code == code
    assert update.occurred_at is not None and update.occurred_at.tzinfo is not None
    if failure is None:
        assert update.failure is None
    else:
        assert type(update.failure) is failure
        assert update.failure.code == code
        assert update.error_message


def test_rate_limited_failure_and_unknown_statuses() -> None:
    body = json.loads(payload("status_failed_131047.json"))
    value = body["entry"][0]["changes"][0]["value"]
    failed = value["statuses"][0]
    value["statuses"] = [
        {**failed, "errors": [{"code": 130429, "title": "Rate limit hit"}]},
        {**failed, "id": "wamid.deleted", "status": "deleted"},
        {**failed, "id": "wamid.future", "status": "something-new"},
        {**failed, "id": "wamid.noerrors", "errors": []},
    ]
    updates = parse(json.dumps(body).encode())
    assert [u.provider_message_id for u in updates] == [failed["id"], "wamid.noerrors"]
    throttled, bare = updates
    assert isinstance(throttled, StatusUpdate) and isinstance(throttled.failure, Throttled)
    assert isinstance(bare, StatusUpdate) and type(bare.failure) is SendError


def test_inbound_timestamp_and_raw() -> None:
    [message] = parse(payload("text_with_contact.json"))
    assert message.received_at == datetime(2026, 3, 4, 15, 0, tzinfo=UTC)  # type: ignore[attr-defined]
    raw = json.loads(message.raw)  # type: ignore[attr-defined]
    assert set(raw) == {"metadata", "message"}


async def seed_outbound(client: httpx.AsyncClient, wamid: str, status: str = "sent") -> int:
    """An outbound WhatsApp message already handed to Meta, as the dispatcher leaves it."""
    ctx = client.ctx  # type: ignore[attr-defined]
    supporter_id = await add_supporter(ctx, {"whatsapp": "+16505551234"}, name="Dana")
    return await sent_message(ctx, supporter_id, "whatsapp", "+16505551234", wamid, status=status)


async def post(client: httpx.AsyncClient, body: bytes) -> httpx.Response:
    return await client.post(
        "/webhooks/whatsapp",
        content=body,
        headers={"Content-Type": "application/json", "X-Hub-Signature-256": sign(body)},
    )


@pytest.mark.parametrize(
    ("filename", "before", "after", "code"),
    [
        ("status_sent.json", "queued", "sent", None),
        ("status_delivered.json", "sent", "delivered", None),
        ("status_read.json", "delivered", "read", None),
        ("status_failed_131047.json", "sent", "failed", "131047"),
        ("status_failed_131026.json", "delivered", "failed", "131026"),
    ],
)
async def test_status_webhook_moves_the_stored_message(
    make_client: ClientFactory, filename: str, before: str, after: str, code: str | None
) -> None:
    client = await make_client(**SETTINGS_NO_BASE)
    message_id = await seed_outbound(client, wamid_in(filename), status=before)
    assert (await post(client, payload(filename))).status_code == 200
    async with client.ctx.sessions() as session:  # type: ignore[attr-defined]
        message = await session.get(Message, message_id)
        attempt = (await session.exec(select(MessageAttempt))).one()
        events = (await session.exec(select(MessageStatusEvent))).all()
    assert message is not None
    assert (message.status, message.error_code) == (after, code)
    assert (attempt.status, attempt.error_code) == (after, code)
    assert [(e.status, e.error_code) for e in events] == [(after, code)]
    if code == "131047":
        # No other channel to fall back to: failed, with Meta's explanation kept.
        assert message.error and "24 hours" in message.error


async def test_read_before_delivered_does_not_move_backwards(make_client: ClientFactory) -> None:
    client = await make_client(**SETTINGS_NO_BASE)
    message_id = await seed_outbound(client, wamid_in("status_read.json"))
    await post(client, payload("status_read.json"))
    await post(client, payload("status_delivered.json"))
    await post(client, payload("status_sent.json"))
    async with client.ctx.sessions() as session:  # type: ignore[attr-defined]
        message = await session.get(Message, message_id)
    assert message is not None and message.status == "read"


async def test_status_before_send_result_is_kept_pending(make_client: ClientFactory) -> None:
    client = await make_client(**SETTINGS_NO_BASE)
    assert (await post(client, payload("status_failed_131047.json"))).status_code == 200
    async with client.ctx.sessions() as session:  # type: ignore[attr-defined]
        pending = (await session.exec(select(PendingStatus))).one()
    assert (pending.status, pending.error_code, pending.failure_kind) == (
        "failed",
        "131047",
        "WindowClosed",
    )


def test_change_for_another_phone_number_is_ignored() -> None:
    body = payload("text_with_contact.json").replace(PHONE_NUMBER_ID.encode(), b"999999999999")
    assert parse(body) == []
    assert len(parse(payload("text_with_contact.json"))) == 1
