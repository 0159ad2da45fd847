"""Telegram's webhook contract case, and helpers its tests share."""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any

from telegram import Update

from tests.channels.contract import SignedRequest

TESTDATA = Path(__file__).resolve().parents[2] / "channels" / "telegram" / "testdata"
TOKEN = "123456:ABC-test"
SECRET = "s3cret"
SETTINGS: dict[str, Any] = {"telegram_bot_token": TOKEN, "telegram_webhook_secret": SECRET}
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def load(name: str) -> dict[str, Any]:
    return json.loads((TESTDATA / f"{name}.json").read_text())  # type: ignore[no-any-return]


def update_id_for(provider_message_id: str) -> int:
    """Telegram ids are integers; the contract's ids are labels, so derive a stable one."""
    if provider_message_id.isdigit():
        return int(provider_message_id)
    return zlib.crc32(provider_message_id.encode())


def text_update(update_id: int, chat_id: int, text: str) -> dict[str, Any]:
    user = {"id": chat_id, "is_bot": False, "first_name": "Wanjiru", "last_name": "Kamau"}
    data = {
        "update_id": update_id,
        "message": {
            "message_id": 7,
            "from": user,
            "chat": {"id": chat_id, "type": "private", "first_name": "Wanjiru"},
            "date": 1772636400,
            "text": text,
        },
    }
    assert Update.de_json(data, None).message is not None  # parses as Telegram's own would
    return data


def post(data: dict[str, Any] | bytes, secret: str | None = SECRET) -> SignedRequest:
    content = data if isinstance(data, bytes) else json.dumps(data).encode()
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers[SECRET_HEADER] = secret
    return SignedRequest("POST", "/webhooks/telegram", headers, content)


class TelegramCase:
    provider = "telegram"
    channel = "telegram"
    signature_header = SECRET_HEADER
    settings = SETTINGS

    def inbound(self, provider_message_id: str, sender: str, body: str) -> SignedRequest:
        return post(text_update(update_id_for(provider_message_id), int(sender), body))

    def sender(self) -> str:
        return "5550002"

    def wrong_signature(self, request: SignedRequest) -> SignedRequest:
        headers = dict(request.headers, **{SECRET_HEADER: "not-the-secret"})
        return SignedRequest(request.method, request.path, headers, request.content)

    def signed_garbage(self) -> SignedRequest:
        return post(b'{"message": {"text": "no update_id"}}')
