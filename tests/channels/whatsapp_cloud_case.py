"""The WhatsApp Cloud API's webhook contract case, plus helpers its tests share."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from tests.channels.contract import SignedRequest

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
