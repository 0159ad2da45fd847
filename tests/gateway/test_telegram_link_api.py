"""POST /supporters/{id}/telegram-link: the t.me url, from TELEGRAM_BOT_USERNAME or the
bot's own getMe (the Bot API fake at the wire), or null with the reason."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from channels.telegram.fake import BOT_USER, FakeTelegramApi
from tests.channels.telegram_case import SETTINGS, TOKEN
from tests.conftest import bearer, make_settings, new_key

MakeClient = Callable[..., Awaitable[httpx.AsyncClient]]
API = "/api/v1"


async def organizer(
    make_client: MakeClient, fake: FakeTelegramApi | None = None, **settings: Any
) -> httpx.AsyncClient:
    transport = fake.transport if fake is not None else None
    client = await make_client(transport=transport, **settings)
    client.headers.update(bearer(await new_key(client.ctx)))  # type: ignore[attr-defined]
    return client


async def link(client: httpx.AsyncClient, name: str = "Amina") -> dict[str, Any]:
    created = await client.post(f"{API}/supporters", json={"name": name})
    assert created.status_code == 201, created.text
    answer = await client.post(f"{API}/supporters/{created.json()['id']}/telegram-link")
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def get_me_calls(fake: FakeTelegramApi) -> int:
    return sum(1 for call in fake.calls if call.method == "getMe")


async def test_the_url_names_the_configured_bot(make_client: MakeClient) -> None:
    fake = FakeTelegramApi(TOKEN)
    client = await organizer(make_client, fake, **SETTINGS, telegram_bot_username="@Rally_Hub_bot")
    answer = await link(client)
    assert answer["url"] == f"https://t.me/Rally_Hub_bot?start={answer['token']}"
    assert answer["url_error"] is None
    assert fake.calls == []  # nobody had to ask the bot


async def test_the_url_names_the_bot_getme_reports_asked_once(make_client: MakeClient) -> None:
    fake = FakeTelegramApi(TOKEN)
    client = await organizer(make_client, fake, **SETTINGS)
    first, second = await link(client, "Amina"), await link(client, "Grace")
    assert first["token"] != second["token"]
    for answer in (first, second):
        assert answer["url"] == f"https://t.me/{BOT_USER['username']}?start={answer['token']}"
        assert answer["url_error"] is None
    assert get_me_calls(fake) == 1


@pytest.mark.parametrize("username", [None, "Rally_Hub_bot"])
async def test_no_url_without_telegram(make_client: MakeClient, username: str | None) -> None:
    client = await organizer(make_client, telegram_bot_username=username)
    answer = await link(client)
    assert answer["token"] and answer["url"] is None
    assert "Telegram is not configured" in answer["url_error"]


async def test_no_url_while_getme_fails_and_one_once_it_answers(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeTelegramApi("999:another-bots-token")  # answers our token 401 Unauthorized
    client = await organizer(make_client, fake, **SETTINGS)
    with caplog.at_level(logging.DEBUG):
        failed = await link(client)
    assert failed["token"] and failed["url"] is None
    assert "TELEGRAM_BOT_USERNAME" in failed["url_error"]
    assert TOKEN not in caplog.text
    assert "telegram getMe failed" in caplog.text

    fake.token = TOKEN  # the failure passes: the next link asks again
    again = await link(client)
    assert again["url"] == f"https://t.me/{BOT_USER['username']}?start={again['token']}"
    assert get_me_calls(fake) == 2


@pytest.mark.parametrize("username", ["no spaces allowed", "bot", "@" + "x" * 33])
def test_a_malformed_bot_username_is_refused(database_url: str, username: str) -> None:
    with pytest.raises(ValidationError, match="bot username"):
        make_settings(database_url, telegram_bot_username=username)
