"""`rallypoint telegram set-webhook` against the Telegram fake served on a loopback port:
Telegram is given RALLYPOINT_PUBLIC_URL/webhooks/telegram and the secret token; a refusal,
a wrong token or no answer is one `error:` line and a non-zero exit; no secret printed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from channels.telegram.fake import FakeTelegramApi
from gateway.demo.loopback import LoopbackServer
from tests.deploy.test_serve_process import free_port
from tests.gateway.cli_process import rallypoint

TOKEN = "123456:AAE-telegram-token"
SECRET = "webhook-Secret_42"


@pytest.fixture
async def telegram() -> AsyncIterator[tuple[FakeTelegramApi, LoopbackServer]]:
    fake = FakeTelegramApi(token=TOKEN)
    server = LoopbackServer("telegram", fake.handler, lambda: None)
    await server.start()
    yield fake, server
    await server.stop()


def env(api_base: str, **overrides: str) -> dict[str, str]:
    values = {
        "RALLYPOINT_PUBLIC_URL": "https://rally.example.org/",
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_WEBHOOK_SECRET": SECRET,
        "TELEGRAM_API_BASE": api_base,
    }
    return {**values, **overrides}


async def test_set_webhook_registers_the_url_and_secret(
    telegram: tuple[FakeTelegramApi, LoopbackServer], tmp_path: Path
) -> None:
    fake, server = telegram
    ran = await rallypoint("telegram", "set-webhook", cwd=tmp_path, env=env(server.base_url))
    assert ran.code == 0, ran.output
    assert fake.webhook_url == "https://rally.example.org/webhooks/telegram"
    assert fake.webhook_secret == SECRET
    assert fake.webhook_allowed_updates == ["message", "my_chat_member"]
    assert ran.stdout.splitlines() == [
        "telegram webhook set: https://rally.example.org/webhooks/telegram "
        "(with TELEGRAM_WEBHOOK_SECRET as its secret token)"
    ]
    assert TOKEN not in ran.output and SECRET not in ran.output


@pytest.mark.parametrize(
    ("overrides", "expected", "code"),
    [
        (
            {"RALLYPOINT_PUBLIC_URL": "http://rally.example.org"},
            "error: setWebhook: Telegram answered 400 (Bad Request: bad webhook: An HTTPS URL "
            "must be provided for webhook)",
            1,
        ),
        (
            {"TELEGRAM_BOT_TOKEN": "654321:another-bots-token"},
            "error: setWebhook: Telegram answered 401 (Unauthorized)",
            1,
        ),
        (
            {"TELEGRAM_WEBHOOK_SECRET": "has spaces!"},
            "error: TELEGRAM_WEBHOOK_SECRET must be 1-256 letters, digits, _ or - "
            "(Telegram's rule)",
            1,
        ),
        (
            {"TELEGRAM_BOT_TOKEN": ""},
            "error: Telegram is off: set TELEGRAM_BOT_TOKEN and TELEGRAM_WEBHOOK_SECRET",
            2,
        ),
    ],
)
async def test_a_refused_set_webhook_is_one_error_line(
    telegram: tuple[FakeTelegramApi, LoopbackServer],
    tmp_path: Path,
    overrides: dict[str, str],
    expected: str,
    code: int,
) -> None:
    fake, server = telegram
    ran = await rallypoint(
        "telegram", "set-webhook", cwd=tmp_path, env=env(server.base_url, **overrides)
    )
    assert (ran.code, ran.stdout, ran.stderr.splitlines()) == (code, "", [expected])
    assert fake.webhook_url == ""
    assert TOKEN not in ran.output and "another-bots-token" not in ran.output


async def test_no_answer_from_telegram_is_one_error_line(tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    ran = await rallypoint("telegram", "set-webhook", cwd=tmp_path, env=env(closed))
    assert ran.code == 1
    assert ran.stderr.splitlines() == [
        "error: setWebhook: no answer from the provider (ConnectError)"
    ]
    assert TOKEN not in ran.output
