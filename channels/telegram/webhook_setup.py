"""Bot API calls about the bot's webhook: register it (setWebhook), read it back
(getWebhookInfo), and who the token belongs to (getMe). Plain httpx: the URL holds the
token, so errors name the method and Telegram's description, never the URL."""

from __future__ import annotations

from typing import Any

import httpx

from channels.checks import unreachable
from channels.telegram.adapter import install_token_redaction
from channels.telegram.config import TelegramConfig

# The updates the adapter reads (channels/telegram/updates.py); Telegram sends no others.
ALLOWED_UPDATES = ["message", "my_chat_member"]
# What Telegram accepts as a webhook's secret_token.
ALLOWED_SECRET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


class TelegramCallFailed(Exception):
    """A Bot API call that did not succeed; the text is safe to print."""


async def call(
    config: TelegramConfig, client: httpx.AsyncClient, method: str, params: dict[str, Any]
) -> Any:
    install_token_redaction()  # httpx logs each request's URL, and this one holds the token
    url = f"{config.api_base.rstrip('/')}/bot{config.token}/{method}"
    try:
        response = await client.post(url, json=params)
    except httpx.HTTPError as exc:
        raise TelegramCallFailed(f"{method}: {unreachable(exc)}") from None
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if not isinstance(answer, dict) or not answer.get("ok"):
        description = answer.get("description") if isinstance(answer, dict) else None
        raise TelegramCallFailed(
            f"{method}: Telegram answered {response.status_code}"
            + (f" ({description})" if isinstance(description, str) else "")
        )
    return answer.get("result")


async def set_webhook(config: TelegramConfig, client: httpx.AsyncClient, url: str) -> None:
    """Have Telegram POST every Update to `url`, with our secret token in its header."""
    secret = config.webhook_secret
    if not 1 <= len(secret) <= 256 or not set(secret) <= ALLOWED_SECRET:
        raise TelegramCallFailed(
            "TELEGRAM_WEBHOOK_SECRET must be 1-256 letters, digits, _ or - (Telegram's rule)"
        )
    params = {"url": url, "secret_token": secret, "allowed_updates": ALLOWED_UPDATES}
    await call(config, client, "setWebhook", params)


async def webhook_url(config: TelegramConfig, client: httpx.AsyncClient) -> str:
    """The URL Telegram posts Updates to now ("" when none is set)."""
    info = await call(config, client, "getWebhookInfo", {})
    url = info.get("url") if isinstance(info, dict) else None
    return url if isinstance(url, str) else ""


async def bot_username(config: TelegramConfig, client: httpx.AsyncClient) -> str:
    me = await call(config, client, "getMe", {})
    name = me.get("username") if isinstance(me, dict) else None
    return name if isinstance(name, str) else "?"
