"""Twilio's webhook contract case, plus helpers its tests share. Signatures are made by
twilio's own RequestValidator, over the public URL Twilio is configured with."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from twilio.request_validator import RequestValidator

from tests.channels.contract import SignedRequest

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
