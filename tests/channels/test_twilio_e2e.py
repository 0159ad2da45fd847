"""Twilio end to end: signed SMS and WhatsApp webhooks in (one supporter, two addresses),
the conversation over the REST API, replies sent by the dispatcher to the fake Messages
API, and Twilio's status callbacks (out of order, a 63016 failure that falls back)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import urlencode, urlsplit

import httpx

from channels.twilio.fake import FakeTwilio
from routing.dispatch.dispatcher import Dispatcher
from tests.channels.twilio_case import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    SETTINGS,
    SMS_FROM,
    WHATSAPP_FROM,
    form,
    signed_post,
    sms_form,
)
from tests.conftest import bearer, new_key

ClientFactory = Callable[..., Awaitable[httpx.AsyncClient]]
PHONE = "+254712345678"
CALLBACK = "https://rallypoint.example.org/webhooks/twilio/status"


async def _callback(
    client: httpx.AsyncClient, fake: FakeTwilio, sid: str, status: str, code: int | None = None
) -> None:
    url, params, headers = fake.status_callback(sid, status, error_code=code)
    assert url == CALLBACK
    response = await client.post(
        urlsplit(url).path,
        content=urlencode(params).encode(),
        headers={**headers, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200, response.text


async def test_sms_and_whatsapp_in_replies_out_statuses_back(make_client: ClientFactory) -> None:
    fake = FakeTwilio(ACCOUNT_SID, AUTH_TOKEN)
    client = await make_client(transport=httpx.MockTransport(fake), **SETTINGS)
    ctx = client.ctx  # type: ignore[attr-defined]
    client.headers.update(bearer(await new_key(ctx)))

    for request in (
        signed_post(sms_form("SM00000000000000000000000000000001", PHONE, "hi by sms")),
        signed_post(form("inbound_whatsapp.json")),
    ):
        answer = await client.post(request.path, headers=request.headers, content=request.content)
        assert answer.status_code == 200

    [convo] = (await client.get("/api/v1/conversations")).json()["items"]
    supporter = (await client.get(f"/api/v1/supporters/{convo['supporter_id']}")).json()
    assert supporter["name"] == PHONE  # the first message (SMS) carried no profile name
    assert sorted((a["channel"], a["address"]) for a in supporter["addresses"]) == [
        ("sms", PHONE),
        ("whatsapp", PHONE),
    ]
    inbound = (await client.get(f"/api/v1/conversations/{convo['id']}/messages")).json()["items"]
    assert [(m["direction"], m["channel"], m["body"]) for m in inbound] == [
        ("inbound", "sms", "hi by sms"),
        ("inbound", "whatsapp", "Habari! Count me in for Saturday."),
    ]

    # A reply over SMS: delivered arrives before sent and wins.
    queued = await client.post(
        f"/api/v1/supporters/{supporter['id']}/messages",
        json={"body": "See you Saturday", "channel": "sms"},
    )
    assert queued.status_code == 202, queued.text
    sms_id = queued.json()["id"]
    await Dispatcher(ctx).run_until_idle()
    [sent] = fake.sent
    assert (sent.get("To"), sent.get("From"), sent.get("Body"), sent.get("StatusCallback")) == (
        PHONE,
        SMS_FROM,
        "See you Saturday",
        CALLBACK,
    )
    message = (await client.get(f"/api/v1/messages/{sms_id}")).json()
    assert (message["status"], message["provider_message_id"]) == ("sent", sent.sid)
    assert sent.sid is not None
    await _callback(client, fake, sent.sid, "delivered")
    await _callback(client, fake, sent.sid, "sent")
    assert (await client.get(f"/api/v1/messages/{sms_id}")).json()["status"] == "delivered"

    # A reply with no channel given goes over WhatsApp (window open); 63016 moves it to SMS.
    queued = await client.post(
        f"/api/v1/supporters/{supporter['id']}/messages", json={"body": "Bring water"}
    )
    assert queued.json()["channel"] == "whatsapp"
    wa_id = queued.json()["id"]
    await Dispatcher(ctx).run_until_idle()
    whatsapp = fake.sent[-1]
    assert (whatsapp.get("To"), whatsapp.get("From")) == (f"whatsapp:{PHONE}", WHATSAPP_FROM)
    assert whatsapp.sid is not None
    await _callback(client, fake, whatsapp.sid, "failed", code=63016)
    moved = (await client.get(f"/api/v1/messages/{wa_id}")).json()
    assert (moved["channel"], moved["status"]) == ("sms", "queued")

    await Dispatcher(ctx).run_until_idle()
    resent = fake.sent[-1]
    assert (resent.get("To"), resent.get("Body")) == (PHONE, "Bring water")
    assert resent.sid is not None
    await _callback(client, fake, resent.sid, "delivered")
    final = (await client.get(f"/api/v1/messages/{wa_id}")).json()
    assert (final["channel"], final["status"], final["provider_message_id"]) == (
        "sms",
        "delivered",
        resent.sid,
    )
    assert len(fake.sent) == 3
