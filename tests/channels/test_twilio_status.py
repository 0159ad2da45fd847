"""Twilio StatusCallbacks through the real app: forward only, failures final and
classified (opt-out, fallback), early callbacks kept until the send result is stored."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import select

from routing.delivery.status import apply_pending_statuses
from storage.models import (
    Message,
    MessageAttempt,
    MessageStatusEvent,
    PendingStatus,
    Supporter,
    SupporterAddress,
)
from tests.channels.twilio_case import SETTINGS, form, signed_post
from tests.routing.fake_adapter import sent_message

ClientFactory = Callable[..., Awaitable[httpx.AsyncClient]]
SID = "SMb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"  # the sid in the status_*.json testdata
WA_SID = "SMc0c1c2c3c4c5c6c7c8c9cacbcccdcecf"
PHONE = "+14155550100"


@dataclass
class Outbound:
    message_id: int
    supporter_id: int


async def _outbound(
    client: httpx.AsyncClient,
    *,
    channel: str = "sms",
    sid: str | None = SID,
    addresses: tuple[tuple[str, str, bool], ...] = (("sms", PHONE, False),),
    with_attempt: bool = True,
) -> Outbound:
    """A sent message, as the dispatcher leaves it: Message + MessageAttempt rows.
    `addresses` are (channel, address, wrote to us within 24 h)."""
    ctx = client.ctx  # type: ignore[attr-defined]
    now = ctx.clock()
    async with ctx.sessions() as session:
        supporter = Supporter(name="Dana", created_at=now, updated_at=now)
        session.add(supporter)
        await session.flush()
        assert supporter.id is not None
        for ch, address, recent in addresses:
            session.add(
                SupporterAddress(
                    supporter_id=supporter.id,
                    channel=ch,
                    address=address,
                    last_inbound_at=now - timedelta(hours=1) if recent else None,
                )
            )
        await session.commit()
    address = dict((c, a) for c, a, _ in addresses)[channel]
    body = "Phone bank tonight at 7"
    message_id = await sent_message(
        ctx, supporter.id, channel, address, sid, body=body, with_attempt=with_attempt
    )
    return Outbound(message_id, supporter.id)


async def _callback(client: httpx.AsyncClient, params: dict[str, str]) -> None:
    request = signed_post(params, "/webhooks/twilio/status")
    response = await client.post(request.path, headers=request.headers, content=request.content)
    assert response.status_code == 200, response.text


async def _get(client: httpx.AsyncClient, model: type, id_: int) -> Any:
    async with client.ctx.sessions() as session:  # type: ignore[attr-defined]
        return await session.get(model, id_)


async def _all(client: httpx.AsyncClient, model: type, *where: Any) -> list[Any]:
    async with client.ctx.sessions() as session:  # type: ignore[attr-defined]
        return list((await session.exec(select(model).where(*where))).all())


def _status(name: str, **changes: str) -> dict[str, str]:
    return {**form(name), **changes}


SEQUENCES = [
    ("sent then delivered", ["status_sent.json", "status_delivered.json"], "delivered", None),
    (
        "delivered before sent ends delivered",
        ["status_delivered.json", "status_sent.json"],
        "delivered",
        None,
    ),
    (
        "undelivered 30003 is final",
        ["status_undelivered_30003.json", "status_delivered.json"],
        "undelivered",
        "30003",
    ),
    (
        "failed 21610 is final",
        ["status_failed_21610.json", "status_delivered.json"],
        "failed",
        "21610",
    ),
]


@pytest.mark.parametrize(
    ("label", "callbacks", "final", "error_code"), SEQUENCES, ids=[s[0] for s in SEQUENCES]
)
async def test_status_sequences(
    make_client: ClientFactory,
    label: str,
    callbacks: list[str],
    final: str,
    error_code: str | None,
) -> None:
    client = await make_client(**SETTINGS)
    out = await _outbound(client)
    for name in callbacks:
        await _callback(client, form(name))
    message = await _get(client, Message, out.message_id)
    assert (message.status, message.error_code, message.channel) == (final, error_code, "sms")
    [attempt] = await _all(client, MessageAttempt)
    assert attempt.status == final
    events = await _all(client, MessageStatusEvent, MessageStatusEvent.message_id == out.message_id)
    # Only moves forward leave a history entry: the late "sent" or "delivered" leaves none.
    assert [(e.status, e.error_code) for e in events] == [(final, error_code)]


async def test_21610_opts_the_supporter_out(make_client: ClientFactory) -> None:
    client = await make_client(**SETTINGS)
    out = await _outbound(client)
    await _callback(client, form("status_failed_21610.json"))
    supporter = await _get(client, Supporter, out.supporter_id)
    assert supporter.opted_out is True


async def test_whatsapp_sent_delivered_read(make_client: ClientFactory) -> None:
    client = await make_client(**SETTINGS)
    out = await _outbound(
        client, channel="whatsapp", sid=WA_SID, addresses=(("whatsapp", "+254712345678", True),)
    )
    for status in ("delivered", "sent", "read", "delivered"):
        await _callback(
            client, _status("status_read_whatsapp.json", MessageStatus=status, SmsStatus=status)
        )
    message = await _get(client, Message, out.message_id)
    assert message.status == "read"
    events = await _all(client, MessageStatusEvent)
    assert [e.status for e in events] == ["delivered", "read"]


async def test_undelivered_sms_falls_back_to_whatsapp(make_client: ClientFactory) -> None:
    client = await make_client(**SETTINGS)
    out = await _outbound(client, addresses=(("sms", PHONE, False), ("whatsapp", PHONE, True)))
    await _callback(client, form("status_undelivered_30003.json"))
    message = await _get(client, Message, out.message_id)
    assert (message.channel, message.status, message.provider_message_id) == (
        "whatsapp",
        "queued",
        None,
    )
    [attempt] = await _all(client, MessageAttempt)
    assert (attempt.channel, attempt.status, attempt.error_code) == ("sms", "undelivered", "30003")


async def test_whatsapp_window_closed_63016_falls_back_to_sms(make_client: ClientFactory) -> None:
    client = await make_client(**SETTINGS)
    out = await _outbound(
        client,
        channel="whatsapp",
        sid=WA_SID,
        addresses=(("whatsapp", "+254712345678", False), ("sms", "+254712345678", False)),
    )
    await _callback(client, form("status_failed_63016_whatsapp.json"))
    message = await _get(client, Message, out.message_id)
    assert (message.channel, message.status) == ("sms", "queued")
    [attempt] = await _all(client, MessageAttempt)
    assert (attempt.channel, attempt.status, attempt.error_code) == ("whatsapp", "failed", "63016")


async def test_unknown_status_is_accepted_and_changes_nothing(make_client: ClientFactory) -> None:
    client = await make_client(**SETTINGS)
    out = await _outbound(client)
    weird = _status("status_sent.json", MessageStatus="partially_delivered", SmsStatus="x")
    await _callback(client, weird)
    message = await _get(client, Message, out.message_id)
    assert message.status == "sent"
    assert await _all(client, MessageStatusEvent) == []
    assert await _all(client, PendingStatus) == []


async def test_callback_before_the_send_result_is_kept_then_applied(
    make_client: ClientFactory,
) -> None:
    client = await make_client(**SETTINGS)
    # The dispatcher has not stored the sid yet: the message exists, its attempt does not.
    out = await _outbound(client, sid=None, with_attempt=False)
    await _callback(client, form("status_delivered.json"))
    [pending] = await _all(client, PendingStatus)
    assert (pending.channel, pending.provider_message_id, pending.status) == (
        "sms",
        SID,
        "delivered",
    )

    ctx = client.ctx  # type: ignore[attr-defined]
    async with ctx.sessions() as session:
        message = await session.get(Message, out.message_id)
        assert message is not None
        message.provider_message_id = SID
        attempt = MessageAttempt(
            message_id=out.message_id,
            channel="sms",
            address=PHONE,
            provider_message_id=SID,
            status="sent",
            created_at=ctx.clock(),
        )
        session.add_all([message, attempt])
        await session.flush()
        await apply_pending_statuses(session, ctx, attempt)
        await session.commit()

    message = await _get(client, Message, out.message_id)
    assert message.status == "delivered"
    assert await _all(client, PendingStatus) == []


async def test_failed_callback_before_send_result_keeps_its_classification(
    make_client: ClientFactory,
) -> None:
    client = await make_client(**SETTINGS)
    await _callback(client, form("status_failed_21610.json"))
    [pending] = await _all(client, PendingStatus)
    assert (pending.status, pending.error_code, pending.failure_kind) == (
        "failed",
        "21610",
        "RecipientOptedOut",
    )
