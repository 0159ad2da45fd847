"""Telegram's webhook contract case, and helpers its tests share."""

from __future__ import annotations

import json
import zlib
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

from telegram import Update

from channels.base import (
    ChannelAdapter,
    ChannelMisconfigured,
    InvalidRecipient,
    OutboundMessage,
    ProviderUnavailable,
    RecipientOptedOut,
    SendError,
    Throttled,
)
from channels.registry import ChannelConfigs
from channels.telegram import TelegramConfig
from channels.telegram.fake import FakeTelegramApi
from tests.channels.contract import SignedRequest
from tests.channels.send_contract import SendCase, registered

TESTDATA = Path(__file__).resolve().parents[2] / "channels" / "telegram" / "testdata"
# Distinctive, so that the contract's log check finds them anywhere they leak.
TOKEN = "123456:AAHq7-contractBotToken_x9Zr"
SECRET = "tg-webhook-s3cret-Kp4w"
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
    secrets = (TOKEN, TOKEN.split(":")[1], SECRET)

    def inbound(self, provider_message_id: str, sender: str, body: str) -> SignedRequest:
        return post(text_update(update_id_for(provider_message_id), int(sender), body))

    def sender(self) -> str:
        return "5550002"

    def wrong_signature(self, request: SignedRequest) -> SignedRequest:
        headers = dict(request.headers, **{SECRET_HEADER: "not-the-secret"})
        return SignedRequest(request.method, request.path, headers, request.content)

    def signed_garbage(self) -> SignedRequest:
        return post(b'{"message": {"text": "no update_id"}}')


# The send contract (tests/channels/send_contract.py): Bot API answers at the wire, as
# FakeTelegramApi.fail names them ("throttle:N" is a 429 with retry_after N).

SEND_CHAT = "5550001"
API_BASE = "https://api.telegram.test"
SEND_CASES: list[SendCase[str | None]] = [
    SendCase("200 with a message", None, result_id=rf"{SEND_CHAT}:1"),
    SendCase("429 retry_after 11", "throttle:11", Throttled, "429", 11.0),
    SendCase("429 without retry_after", "too_many_requests", Throttled, "429"),
    SendCase("connection refused", "connect_error", ProviderUnavailable, "network"),
    SendCase("read timeout", "timeout", ProviderUnavailable, "timeout"),
    SendCase("500", "internal_error", ProviderUnavailable, "network"),
    SendCase("502", "server_error", ProviderUnavailable, "network"),
    SendCase("403 bot blocked", "blocked", RecipientOptedOut, "403"),
    SendCase("403 cannot initiate", "cannot_initiate", InvalidRecipient, "403"),
    SendCase("400 chat not found", "chat_not_found", InvalidRecipient, "400"),
    SendCase("400 chat migrated", "migrated", InvalidRecipient, "400"),
    SendCase("400 other bad request", "bad_request", SendError, "400"),
    SendCase("401 token refused", "unauthorized", ChannelMisconfigured, "401"),
    SendCase("409 unmapped", "conflict", SendError, "Conflict"),
]


class TelegramSendRig:
    provider = "telegram"
    secrets = (TOKEN, TOKEN.split(":")[1], SECRET)
    cases = SEND_CASES

    def message(self) -> OutboundMessage:
        return OutboundMessage(1, "telegram", SEND_CHAT, "Meet at 10: the secret plan")

    def open(self, answer: str | None) -> AbstractAsyncContextManager[ChannelAdapter]:
        fake = FakeTelegramApi(token=TOKEN)
        if answer is not None:
            fake.fail(SEND_CHAT, answer)
        config = TelegramConfig(TOKEN, SECRET, api_base=API_BASE)
        return registered(ChannelConfigs(telegram=config), "telegram", fake.transport)
