"""`rallypoint doctor` for Telegram: the token works (getMe) and the webhook Telegram
holds is ours (getWebhookInfo)."""

from __future__ import annotations

import httpx

from channels.checks import CheckResult, failed, passed
from channels.telegram.config import TelegramConfig
from channels.telegram.webhook_setup import TelegramCallFailed, bot_username, webhook_url


async def check_telegram(
    config: TelegramConfig, client: httpx.AsyncClient, expected_webhook: str
) -> list[CheckResult]:
    try:
        username = await bot_username(config, client)
    except TelegramCallFailed as exc:
        return [failed("telegram credentials", str(exc))]
    results = [passed("telegram credentials", f"bot @{username}")]
    try:
        actual = await webhook_url(config, client)
    except TelegramCallFailed as exc:
        return [*results, failed("telegram webhook", str(exc))]
    if actual == expected_webhook:
        results.append(passed("telegram webhook", actual))
    elif not actual:
        results.append(
            failed("telegram webhook", "none set (run `rallypoint telegram set-webhook`)")
        )
    else:
        results.append(
            failed(
                "telegram webhook",
                f"Telegram posts to {actual}, not {expected_webhook} "
                "(run `rallypoint telegram set-webhook`)",
            )
        )
    return results
