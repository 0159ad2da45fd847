"""The WhatsApp Cloud API's webhook contract case, plus helpers its tests share."""

from __future__ import annotations

import hashlib
import hmac
import json
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from pathlib import Path
from typing import Any

from channels.base import (
    ChannelAdapter,
    ChannelMisconfigured,
    InvalidRecipient,
    OutboundMessage,
    ProviderUnavailable,
    SendError,
    Throttled,
    WindowClosed,
)
from channels.registry import ChannelConfigs
from channels.whatsapp_cloud import WhatsAppCloudConfig
from channels.whatsapp_cloud.fake import Failure, FakeWhatsAppCloud
from tests.channels.contract import SignedRequest
from tests.channels.send_contract import SendCase, registered

TESTDATA = Path(__file__).resolve().parents[2] / "channels" / "whatsapp_cloud" / "testdata"
ACCESS_TOKEN = "EAAtestTOKENvalue0123456789"
PHONE_NUMBER_ID = "106540352242922"
APP_SECRET = "0f3c6b1e2d4a5968778695a4b3c2d1e0"
VERIFY_TOKEN = "rallypoint-verify-7Qx"
API_BASE = "https://graph.test/v21.0"

SETTINGS: dict[str, Any] = {
    "whatsapp_access_token": ACCESS_TOKEN,
    "whatsapp_phone_number_id": PHONE_NUMBER_ID,
    "whatsapp_app_secret": APP_SECRET,
    "whatsapp_verify_token": VERIFY_TOKEN,
    "whatsapp_api_base": API_BASE,
}


def sign(body: bytes, secret: str = APP_SECRET) -> str:
    """X-Hub-Signature-256 computed with the standard library, over the exact bytes."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signed_post(body: bytes, secret: str = APP_SECRET) -> SignedRequest:
    return SignedRequest(
        method="POST",
        path="/webhooks/whatsapp",
        headers={"Content-Type": "application/json", "X-Hub-Signature-256": sign(body, secret)},
        content=body,
    )


def payload(name: str) -> bytes:
    return (TESTDATA / name).read_bytes()


def text_notification(wamid: str, wa_id: str, body: str, name: str = "Contract Tester") -> bytes:
    data = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "102290129340398",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "15550783881",
                                "phone_number_id": PHONE_NUMBER_ID,
                            },
                            "contacts": [{"profile": {"name": name}, "wa_id": wa_id}],
                            "messages": [
                                {
                                    "from": wa_id,
                                    "id": wamid,
                                    "timestamp": "1772636400",
                                    "type": "text",
                                    "text": {"body": body},
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }
    return json.dumps(data, separators=(",", ":")).encode()


class WhatsAppCloudCase:
    provider = "whatsapp"
    channel = "whatsapp"
    signature_header = "X-Hub-Signature-256"
    settings = SETTINGS
    secrets = (ACCESS_TOKEN, APP_SECRET, VERIFY_TOKEN)

    def inbound(self, provider_message_id: str, sender: str, body: str) -> SignedRequest:
        wamid = f"wamid.HBgLMTQxNTU1NTAxMDA{provider_message_id}"
        return signed_post(text_notification(wamid, sender.lstrip("+"), body))

    def sender(self) -> str:
        return "+14155550100"

    def wrong_signature(self, request: SignedRequest) -> SignedRequest:
        headers = {**request.headers, "X-Hub-Signature-256": sign(request.content, "not-it")}
        return replace(request, headers=headers)

    def signed_garbage(self) -> SignedRequest:
        return signed_post(b'{"object":"page","entry":[]}')


# The send contract (tests/channels/send_contract.py): Graph API answers at the wire.

SEND_TO = "+16505551234"
WAMID = r"wamid\.HBgL[A-Za-z0-9+/=]+"
MISCONFIGURED = ChannelMisconfigured
SEND_CASES: list[SendCase[Failure | None]] = [
    SendCase("200 with a wamid", None, result_id=WAMID),
    SendCase(
        "429 + Retry-After", Failure(http_status=429, retry_after="30"), Throttled, None, 30.0
    ),
    SendCase("429 without Retry-After", Failure(http_status=429), Throttled),
    SendCase("130429 throughput", Failure(130429, message="Rate limit hit"), Throttled, "130429"),
    SendCase("131056 pair rate limit", Failure(131056), Throttled, "131056"),
    SendCase("80007 WABA rate limit", Failure(80007), Throttled, "80007"),
    SendCase("4 app request limit", Failure(4, http_status=400), Throttled, "4"),
    SendCase("connection dropped", Failure(disconnect=True), ProviderUnavailable),
    SendCase("read timeout", Failure(timeout=True), ProviderUnavailable),
    SendCase("500 no code", Failure(http_status=500, message="Internal"), ProviderUnavailable),
    SendCase("131000 something went wrong", Failure(131000, 500), ProviderUnavailable, "131000"),
    SendCase("131047 window", Failure(131047, message="Re-engagement"), WindowClosed, "131047"),
    SendCase("131026 undeliverable", Failure(131026), InvalidRecipient, "131026"),
    SendCase("190 token expired", Failure(190, 401, "expired"), MISCONFIGURED, "190"),
    SendCase("10 permission denied", Failure(10, 403), MISCONFIGURED, "10"),
    SendCase("200 permissions", Failure(200, 403), MISCONFIGURED, "200"),
    SendCase("100/33 wrong number id", Failure(100, subcode=33), MISCONFIGURED, "100"),
    SendCase("100 invalid parameter", Failure(100, message="Invalid parameter"), SendError, "100"),
    SendCase("131009 parameter value", Failure(131009), SendError, "131009"),
    SendCase("131051 unsupported type", Failure(131051), SendError, "131051"),
    SendCase("unknown 987654", Failure(987654, message="Brand new error"), SendError, "987654"),
]


class WhatsAppCloudSendRig:
    provider = "whatsapp_cloud"
    secrets = (ACCESS_TOKEN, APP_SECRET, VERIFY_TOKEN)
    cases = SEND_CASES

    def message(self) -> OutboundMessage:
        return OutboundMessage(1, "whatsapp", SEND_TO, "See you Saturday: the secret plan")

    def open(self, answer: Failure | None) -> AbstractAsyncContextManager[ChannelAdapter]:
        fake = FakeWhatsAppCloud(ACCESS_TOKEN, PHONE_NUMBER_ID, APP_SECRET, api_base=API_BASE)
        if answer is not None:
            fake.fail_next(SEND_TO, answer)
        config = WhatsAppCloudConfig(
            ACCESS_TOKEN, PHONE_NUMBER_ID, APP_SECRET, VERIFY_TOKEN, api_base=API_BASE
        )
        return registered(ChannelConfigs(whatsapp_cloud=config), "whatsapp", fake.transport())
