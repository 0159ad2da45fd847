"""Twilio's webhook contract case, plus helpers its tests share. Signatures are made by
twilio's own RequestValidator, over the public URL Twilio is configured with."""

from __future__ import annotations

import json
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
from twilio.request_validator import RequestValidator

from channels.base import (
    ChannelAdapter,
    ChannelMisconfigured,
    InvalidRecipient,
    OutboundMessage,
    ProviderUnavailable,
    RecipientOptedOut,
    SendError,
    Throttled,
    WindowClosed,
)
from channels.registry import ChannelConfigs
from channels.twilio import TwilioConfig
from channels.twilio.fake import FakeTwilio, Reply
from tests.channels.contract import SignedRequest
from tests.channels.send_contract import SendCase, basic_auth, registered

TESTDATA = Path(__file__).resolve().parents[2] / "channels" / "twilio" / "testdata"
PUBLIC_URL = "https://rallypoint.example.org"  # tests/conftest.py make_settings
ACCOUNT_SID = "AC0123456789abcdef0123456789abcdef"
AUTH_TOKEN = "f3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8"
SMS_FROM = "+14155550199"
WHATSAPP_FROM = "whatsapp:+14155550199"
API_BASE = "https://api.twilio.test"

SETTINGS: dict[str, Any] = {
    "twilio_account_sid": ACCOUNT_SID,
    "twilio_auth_token": AUTH_TOKEN,
    "twilio_sms_from": SMS_FROM,
    "twilio_whatsapp_from": WHATSAPP_FROM,
    "twilio_api_base": API_BASE,
}


def form(name: str) -> dict[str, str]:
    """A testdata form (one of channels/twilio/testdata/*.json)."""
    data: dict[str, str] = json.loads((TESTDATA / name).read_text())
    return data


def sign(url: str, params: dict[str, str], token: str = AUTH_TOKEN) -> str:
    return RequestValidator(token).compute_signature(url, params)


def signed_post(
    params: dict[str, str],
    path: str = "/webhooks/twilio",
    *,
    token: str = AUTH_TOKEN,
    signed_url: str | None = None,
) -> SignedRequest:
    """A form POST to `path` signed over PUBLIC_URL + path (or `signed_url`)."""
    url = signed_url or PUBLIC_URL + path
    return SignedRequest(
        method="POST",
        path=path,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": sign(url, params, token),
        },
        content=urlencode(params).encode(),
    )


def sms_form(message_sid: str, sender: str, body: str) -> dict[str, str]:
    params = form("inbound_sms.json")
    params.update(
        MessageSid=message_sid, SmsMessageSid=message_sid, SmsSid=message_sid, From=sender
    )
    params["Body"] = body
    return params


class TwilioCase:
    provider = "twilio"
    channel = "sms"
    signature_header = "X-Twilio-Signature"
    settings = SETTINGS
    secrets = (AUTH_TOKEN,)

    def inbound(self, provider_message_id: str, sender: str, body: str) -> SignedRequest:
        return signed_post(sms_form(f"SM{provider_message_id}", sender, body))

    def sender(self) -> str:
        return "+14155550100"

    def wrong_signature(self, request: SignedRequest) -> SignedRequest:
        url = PUBLIC_URL + request.path
        params = dict(_decode(request.content))
        headers = {**request.headers, "X-Twilio-Signature": sign(url, params, "not-the-token")}
        return replace(request, headers=headers)

    def signed_garbage(self) -> SignedRequest:
        # Correctly signed, but no MessageSid or From: not an inbound message.
        return signed_post({"Body": "hello", "AccountSid": ACCOUNT_SID})


def _decode(content: bytes) -> list[tuple[str, str]]:
    return parse_qsl(content.decode(), keep_blank_values=True)


# The send contract (tests/channels/send_contract.py): Twilio's answers at the wire.

SEND_TO = "+14155550100"
SMS_ID = r"SM[0-9a-f]{32}"
SEND_CASES: list[SendCase[Reply]] = [
    SendCase("201 created", Reply.ok(), result_id=SMS_ID),
    SendCase("201 created as sent", Reply.ok("sent"), result_id=SMS_ID),
    SendCase("429 with Retry-After", Reply.throttled(7), Throttled, "20429", 7.0),
    SendCase("429 without Retry-After", Reply.throttled(), Throttled, "20429"),
    SendCase("21611 queue full", Reply.error(21611), Throttled, "21611"),
    SendCase("connection refused", Reply.network(), ProviderUnavailable),
    SendCase("read timeout", Reply.timeout(), ProviderUnavailable),
    SendCase("500", Reply.server_error(500), ProviderUnavailable),
    SendCase("503", Reply.server_error(503), ProviderUnavailable),
    SendCase("21610 opted out", Reply.error(21610), RecipientOptedOut, "21610"),
    SendCase("21211 invalid To", Reply.error(21211), InvalidRecipient, "21211"),
    SendCase("21614 not a mobile", Reply.error(21614), InvalidRecipient, "21614"),
    SendCase("30003 unreachable", Reply.error(30003), InvalidRecipient, "30003"),
    SendCase("30005 unknown handset", Reply.error(30005), InvalidRecipient, "30005"),
    SendCase("30006 landline", Reply.error(30006), InvalidRecipient, "30006"),
    SendCase("63016 window closed", Reply.error(63016), WindowClosed, "63016"),
    SendCase("20003 bad credentials", Reply.error(20003, 401), ChannelMisconfigured, "20003"),
    SendCase("20404 wrong account", Reply.error(20404, 404), ChannelMisconfigured, "20404"),
    SendCase("21606 sender cannot send", Reply.error(21606), ChannelMisconfigured, "21606"),
    SendCase("21659 not a Twilio number", Reply.error(21659), ChannelMisconfigured, "21659"),
    SendCase("401 without a code", Reply.error(0, 401), ChannelMisconfigured),
    SendCase("30007 filtered as spam", Reply.error(30007), SendError, "30007"),
    SendCase("unknown code 21999", Reply.error(21999), SendError, "21999"),
]


class TwilioSendRig:
    provider = "twilio"
    secrets = (AUTH_TOKEN, basic_auth(ACCOUNT_SID, AUTH_TOKEN))
    cases = SEND_CASES

    def message(self) -> OutboundMessage:
        return OutboundMessage(1, "sms", SEND_TO, "Phone bank tonight: the secret plan")

    def open(self, answer: Reply) -> AbstractAsyncContextManager[ChannelAdapter]:
        fake = FakeTwilio(ACCOUNT_SID, AUTH_TOKEN, api_base=API_BASE)
        fake.script(SEND_TO, answer)
        config = TwilioConfig(ACCOUNT_SID, AUTH_TOKEN, sms_from=SMS_FROM, api_base=API_BASE)
        return registered(ChannelConfigs(twilio=config), "sms", httpx.MockTransport(fake))
