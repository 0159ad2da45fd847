"""Twilio webhooks through the real app: signed with twilio's RequestValidator over the
public URL, answered with empty TwiML, stored as one conversation per supporter."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import func
from sqlmodel import select

from channels.twilio.adapter import EMPTY_TWIML
from storage.models import Conversation, Message, Supporter, SupporterAddress
from tests.channels.contract import SignedRequest
from tests.channels.twilio_case import (
    ACCOUNT_SID,
    PUBLIC_URL,
    SETTINGS,
    form,
    sign,
    signed_post,
    sms_form,
)

ClientFactory = Callable[..., Awaitable[httpx.AsyncClient]]
MEDIA = "https://api.twilio.com/2010-04-01/Accounts/" + ACCOUNT_SID + "/Messages/"


async def _post(client: httpx.AsyncClient, request: SignedRequest) -> httpx.Response:
    return await client.request(
        request.method, request.path, headers=request.headers, content=request.content
    )


async def _rows(client: httpx.AsyncClient, model: type, *where: Any) -> list[Any]:
    async with client.ctx.sessions() as session:  # type: ignore[attr-defined]
        return list((await session.exec(select(model).where(*where))).all())


async def _count(client: httpx.AsyncClient, model: type) -> int:
    async with client.ctx.sessions() as session:  # type: ignore[attr-defined]
        return (await session.exec(select(func.count()).select_from(model))).one()


@dataclass(frozen=True)
class Stored:
    channel: str
    address: str
    body: str
    supporter_name: str
    attachments: list[dict[str, str]] = field(default_factory=list)


def _without(params: dict[str, str], *names: str) -> dict[str, str]:
    return {k: v for k, v in params.items() if k not in names}


INBOUND = [
    (
        "sms, the full form",
        form("inbound_sms.json"),
        Stored("sms", "+14155550100", "Hi, I'd like to help with the phone bank", "+14155550100"),
    ),
    (
        "whatsapp with profile name",
        form("inbound_whatsapp.json"),
        Stored("whatsapp", "+254712345678", "Habari! Count me in for Saturday.", "Amina W."),
    ),
    (
        "mms with two media",
        form("inbound_mms.json"),
        Stored(
            "sms",
            "+14155550101",
            "Flyer and sign-up sheet attached",
            "+14155550101",
            [
                {
                    "url": MEDIA + "MM0c1d2e3f405162738495a6b7c8d9e0f1/Media/"
                    "ME1111111111111111111111111111111a",
                    "content_type": "image/jpeg",
                },
                {
                    "url": MEDIA + "MM0c1d2e3f405162738495a6b7c8d9e0f1/Media/"
                    "ME2222222222222222222222222222222b",
                    "content_type": "application/pdf",
                },
            ],
        ),
    ),
    (
        "whatsapp button reply: the button text is the body",
        form("inbound_whatsapp_button.json"),
        Stored("whatsapp", "+254712345678", "Yes, I'll be there", "Amina W."),
    ),
    (
        "whatsapp button with a payload only",
        _without(form("inbound_whatsapp_button.json"), "ButtonText"),
        Stored("whatsapp", "+254712345678", "rsvp-yes", "Amina W."),
    ),
    (
        "whatsapp location",
        form("inbound_whatsapp_location.json"),
        Stored("whatsapp", "+254712345678", "location: -1.2920659,36.8219462", "Amina W."),
    ),
]


@pytest.mark.parametrize(("label", "params", "expected"), INBOUND, ids=[c[0] for c in INBOUND])
async def test_inbound_is_stored_and_answered_with_empty_twiml(
    make_client: ClientFactory, label: str, params: dict[str, str], expected: Stored
) -> None:
    client = await make_client(**SETTINGS)
    response = await _post(client, signed_post(params))
    assert response.status_code == 200, response.text
    assert response.text == EMPTY_TWIML
    assert response.headers["content-type"].startswith("text/xml")

    [message] = await _rows(client, Message, Message.direction == "inbound")
    assert (message.channel, message.address, message.body, message.status) == (
        expected.channel,
        expected.address,
        expected.body,
        "received",
    )
    assert message.provider_message_id == params["MessageSid"]
    assert message.attachments == expected.attachments
    # The whole form is kept for audit, the signature is not.
    assert json.loads(message.raw) == params
    assert "X-Twilio-Signature" not in message.raw
    [supporter] = await _rows(client, Supporter)
    assert supporter.name == expected.supporter_name
    assert supporter.source == "inbound"
    [address] = await _rows(client, SupporterAddress)
    assert (address.channel, address.address) == (expected.channel, expected.address)


def _signed_json() -> SignedRequest:
    # A JSON body signed over the URL alone (no form params): signed, but not ours.
    return SignedRequest(
        "POST",
        "/webhooks/twilio",
        {
            "Content-Type": "application/json",
            "X-Twilio-Signature": sign(PUBLIC_URL + "/webhooks/twilio", {}),
        },
        b'{"MessageSid": "SM1", "From": "+14155550100"}',
    )


def _tampered(request: SignedRequest, **changes: str) -> SignedRequest:
    params = {**sms_form("SMtampered", "+14155550100", "hello"), **changes}
    return SignedRequest(request.method, request.path, request.headers, urlencode(params).encode())


_GOOD = signed_post(sms_form("SMtampered", "+14155550100", "hello"))
_SIGNED_OVER_INTERNAL_URL = signed_post(
    sms_form("SMinternal", "+14155550100", "hello"),
    signed_url="http://127.0.0.1:8000/webhooks/twilio",
)
REJECTED = [
    ("no signature header", _GOOD.without_header("X-Twilio-Signature"), 403),
    (
        "signed with another token",
        signed_post(sms_form("SMx", "+14155550100", "hi"), token="x"),
        403,
    ),
    ("signed over the internal URL, not the public one", _SIGNED_OVER_INTERNAL_URL, 403),
    ("body changed after signing", _tampered(_GOOD, Body="send money"), 403),
    ("field added after signing", _tampered(_GOOD, Extra="1"), 403),
    (
        "unsigned JSON body",
        SignedRequest("POST", "/webhooks/twilio", {"Content-Type": "application/json"}, b"{}"),
        403,
    ),
    ("signed form without From", signed_post(_without(form("inbound_sms.json"), "From")), 400),
    (
        "signed form without MessageSid",
        signed_post(_without(form("inbound_sms.json"), "MessageSid", "SmsMessageSid", "SmsSid")),
        400,
    ),
    (
        "signed, From not a phone number",
        signed_post(sms_form("SMbad", "whatsapp:hello", "hi")),
        400,
    ),
    ("signed JSON body", _signed_json(), 400),
    (
        "signed, unknown webhook kind",
        signed_post(form("inbound_sms.json"), "/webhooks/twilio/other"),
        400,
    ),
    (
        "signed status callback without MessageStatus",
        signed_post(
            _without(form("status_sent.json"), "MessageStatus", "SmsStatus"),
            "/webhooks/twilio/status",
        ),
        400,
    ),
]


@pytest.mark.parametrize(("label", "request_", "status"), REJECTED, ids=[c[0] for c in REJECTED])
async def test_rejected_requests_store_nothing(
    make_client: ClientFactory, label: str, request_: SignedRequest, status: int
) -> None:
    client = await make_client(**SETTINGS)
    response = await _post(client, request_)
    assert response.status_code == status, response.text
    assert await _count(client, Message) == 0
    assert await _count(client, Supporter) == 0


async def test_signature_covers_the_query_string(make_client: ClientFactory) -> None:
    client = await make_client(**SETTINGS)
    params = sms_form("SMquery", "+14155550100", "hello")
    path = "/webhooks/twilio?team=north&source=flyer"
    assert (await _post(client, signed_post(params, path))).status_code == 200
    # The same form signed over the URL without its query string does not pass.
    unsigned_query = signed_post(
        sms_form("SMquery2", "+14155550100", "hello"), signed_url=PUBLIC_URL + "/webhooks/twilio"
    )
    moved = SignedRequest("POST", path, unsigned_query.headers, unsigned_query.content)
    assert (await _post(client, moved)).status_code == 403
    assert [m.provider_message_id for m in await _rows(client, Message)] == ["SMquery"]


async def test_signature_over_the_url_with_default_port_passes(
    make_client: ClientFactory,
) -> None:
    client = await make_client(**SETTINGS)
    request = signed_post(
        sms_form("SMport", "+14155550100", "hello"),
        signed_url="https://rallypoint.example.org:443/webhooks/twilio",
    )
    assert (await _post(client, request)).status_code == 200


async def test_form_with_charset_in_content_type_is_read(make_client: ClientFactory) -> None:
    client = await make_client(**SETTINGS)
    request = signed_post(sms_form("SMcharset", "+14155550100", "Ça va? ✊"))
    headers = {
        **request.headers,
        "Content-Type": "application/x-www-form-urlencoded; charset=UTF-8",
    }
    response = await client.post(request.path, headers=headers, content=request.content)
    assert response.status_code == 200
    [message] = await _rows(client, Message)
    assert message.body == "Ça va? ✊"


async def test_body_over_one_mebibyte_is_413(make_client: ClientFactory) -> None:
    client = await make_client(**SETTINGS)
    request = signed_post(sms_form("SMhuge", "+14155550100", "x" * (1024 * 1024 + 1)))
    response = await _post(client, request)
    assert response.status_code == 413
    assert await _count(client, Message) == 0


async def test_form_with_5000_fields_is_400(make_client: ClientFactory) -> None:
    client = await make_client(**SETTINGS)
    params = sms_form("SMwide", "+14155550100", "hello")
    params.update({f"Field{i}": "x" for i in range(5000)})
    response = await _post(client, signed_post(params))
    assert response.status_code == 400
    assert await _count(client, Message) == 0


async def test_sms_then_whatsapp_from_one_number_is_one_supporter(
    make_client: ClientFactory,
) -> None:
    client = await make_client(**SETTINGS)
    sms = sms_form("SMfirst", "+254712345678", "hello by sms")
    whatsapp = {**form("inbound_whatsapp.json"), "Body": "and now on whatsapp"}
    assert (await _post(client, signed_post(sms))).status_code == 200
    assert (await _post(client, signed_post(whatsapp))).status_code == 200

    [supporter] = await _rows(client, Supporter)
    addresses = await _rows(client, SupporterAddress)
    assert sorted((a.channel, a.address, a.supporter_id) for a in addresses) == [
        ("sms", "+254712345678", supporter.id),
        ("whatsapp", "+254712345678", supporter.id),
    ]
    [conversation] = await _rows(client, Conversation)
    assert conversation.supporter_id == supporter.id
    assert conversation.unread_count == 2
    messages = await _rows(client, Message, Message.conversation_id == conversation.id)
    assert [(m.channel, m.body) for m in sorted(messages, key=lambda m: m.id)] == [
        ("sms", "hello by sms"),
        ("whatsapp", "and now on whatsapp"),
    ]


async def test_stop_by_sms_opts_the_supporter_out(make_client: ClientFactory) -> None:
    client = await make_client(**SETTINGS)
    response = await _post(client, signed_post(sms_form("SMstop", "+14155550100", "Stop")))
    assert response.status_code == 200
    [supporter] = await _rows(client, Supporter)
    assert supporter.opted_out is True
