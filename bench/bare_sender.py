"""The dispatch baseline: the Twilio adapter (or Africa's Talking's) alone, in a process
of its own, sending `count` SMS through the same provider client (httpx over aiohttp) with
the same number in flight as the dispatcher, to the same fake provider; no database, no
outbox, no rate limits. Prints the rate (msg/s) as JSON: what this machine's CPU allows for
the HTTP side of a send, so the dispatcher's figure has a same-run ceiling to be read
against.

Usage: python -m bench.bare_sender PROVIDER_URL COUNT CONCURRENCY
    [twilio|africastalking|whatsapp|telegram]
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from bench import seed, twilio_forms
from channels.base import OutboundMessage
from gateway.app import build_context
from gateway.cli import run_loop
from gateway.heap import settle_heap
from gateway.settings import Settings


def provider_settings(name: str, provider: str) -> dict[str, str]:
    if name == "africastalking":
        from bench import fake_africastalking

        return {
            "africastalking_username": fake_africastalking.USERNAME,
            "africastalking_api_key": fake_africastalking.API_KEY,
            "africastalking_callback_secret": "bench-callback-secret-0123",
            "africastalking_api_base": provider,
        }
    if name in ("whatsapp", "telegram"):
        from bench import fake_provider

        if name == "telegram":
            return {
                "telegram_bot_token": fake_provider.TELEGRAM_TOKEN,
                "telegram_webhook_secret": "bench-webhook-secret",
                "telegram_api_base": provider,
            }
        return {
            "whatsapp_access_token": fake_provider.WHATSAPP_TOKEN,
            "whatsapp_phone_number_id": fake_provider.WHATSAPP_PHONE_ID,
            "whatsapp_app_secret": "bench-app-secret",
            "whatsapp_verify_token": "bench-verify-token",
            "whatsapp_api_base": provider + "/v21.0",
        }
    return {
        "twilio_account_sid": twilio_forms.ACCOUNT_SID,
        "twilio_auth_token": twilio_forms.AUTH_TOKEN,
        "twilio_sms_from": twilio_forms.TO,
        "twilio_api_base": provider,
    }


async def main(provider: str, count: int, concurrency: int, name: str = "twilio") -> int:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url="sqlite://",
        dispatch_concurrency=concurrency,
        **provider_settings(name, provider),  # type: ignore[arg-type]
    )
    ctx = build_context(settings)
    adapter = ctx.registry.by_provider[name]
    settle_heap(settings.gc_threshold)
    channel = {"whatsapp": "whatsapp", "telegram": "telegram"}.get(name, "sms")
    messages = iter(
        OutboundMessage(
            message_id=i,
            channel=channel,  # type: ignore[arg-type]
            to=str(i) if channel == "telegram" else seed.phone(i),
            body="See you Saturday!",
        )
        for i in range(1, count + 1)
    )
    sent = 0

    async def sender() -> None:
        nonlocal sent
        for message in messages:
            await adapter.send(message)
            sent += 1

    elapsed, cpu = await timed(sender, concurrency)
    await ctx.http_client.aclose()
    await ctx.engine.dispose()
    print(json.dumps({"sent": sent, "seconds": elapsed, "rate": sent / elapsed, "cpu": cpu}))
    return 0


async def timed(sender: Callable[[], Awaitable[None]], concurrency: int) -> tuple[float, float]:
    """Run `concurrency` copies of `sender`: (wall-clock seconds, CPU seconds)."""
    started, cpu = time.monotonic(), time.process_time()
    await asyncio.gather(*(sender() for _ in range(concurrency)))
    return time.monotonic() - started, time.process_time() - cpu


def cli(main: Callable[[str, int, int, str], Coroutine[Any, Any, int]]) -> int:
    """`python -m bench.<module> PROVIDER_URL COUNT CONCURRENCY [KIND]` runs `main`."""
    url, total, in_flight = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    which = sys.argv[4] if len(sys.argv) > 4 else "twilio"
    return run_loop(main(url, total, in_flight, which))


if __name__ == "__main__":
    raise SystemExit(cli(main))
