"""Telegram send(): python-telegram-bot against the fake Bot API at the wire. The Bot
API's errors and what each becomes are the send contract's table (telegram_case.py)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from channels.base import (
    ChannelMisconfigured,
    InvalidRecipient,
    OutboundMessage,
    RecipientOptedOut,
    SendError,
    Throttled,
)
from channels.telegram.adapter import TelegramAdapter
from channels.telegram.fake import FakeTelegramApi
from tests.channels.telegram_case import TOKEN

CHAT = "5550001"
API = "https://api.telegram.test"


@dataclass
class Rig:
    fake: FakeTelegramApi
    adapter: TelegramAdapter
    http: httpx.AsyncClient


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    fake = FakeTelegramApi(token=TOKEN)
    http = httpx.AsyncClient(transport=fake.transport)
    adapter = TelegramAdapter(token=TOKEN, webhook_secret="s3cret", http_client=http, api_base=API)
    yield Rig(fake, adapter, http)
    await adapter.aclose()
    await http.aclose()


def outbound(body: str, *, message_id: int = 1, to: str = CHAT, **extra: object) -> OutboundMessage:
    return OutboundMessage(message_id=message_id, channel="telegram", to=to, body=body, **extra)  # type: ignore[arg-type]


async def test_a_short_message_is_one_sendmessage(rig: Rig) -> None:
    result = await rig.adapter.send(outbound("See you at 10 — bring water 💧"))
    assert result.provider_message_id == f"{CHAT}:1"
    assert (result.status, result.segments) == ("sent", 1)
    [call] = rig.fake.calls  # no getMe: the bot is never initialised
    assert call.method == "sendMessage"
    assert call.content_type == "application/x-www-form-urlencoded"
    assert call.params == {"chat_id": CHAT, "text": "See you at 10 — bring water 💧"}


async def test_requests_go_to_the_configured_base_with_the_token(rig: Rig) -> None:
    seen: list[httpx.URL] = []

    async def record(request: httpx.Request) -> None:
        seen.append(request.url)

    rig.http.event_hooks["request"].append(record)
    await rig.adapter.send(outbound("hello"))
    assert [str(url) for url in seen] == [f"{API}/bot{TOKEN}/sendMessage"]


async def test_construction_makes_no_request() -> None:
    fake = FakeTelegramApi()
    async with httpx.AsyncClient(transport=fake.transport) as http:
        adapter = TelegramAdapter(token=TOKEN, webhook_secret="s", http_client=http)
        assert adapter.capabilities("telegram").max_length is None
        assert adapter.capabilities("telegram").media is True
        assert adapter.sender_key("telegram") == "telegram:bot"
        assert adapter.per_recipient_rate == 1.0
        await adapter.aclose()
        assert fake.calls == []
        assert not http.is_closed  # the injected client belongs to the app


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("a" * 4096, ["a" * 4096]),
        ("a" * 4097, ["a" * 4096, "a"]),
        # 4,095 + an emoji (2 UTF-16 units) is 4,097 units: the emoji moves whole.
        ("a" * 4095 + "😀", ["a" * 4095, "😀"]),
        ("a" * 4094 + "😀", ["a" * 4094 + "😀"]),
        ("b" * 4095 + "👍🏽", ["b" * 4095, "👍🏽"]),  # skin tone stays with its emoji
        # A break drops the space it breaks at; the last part is sent as it is.
        ("word " * 1000, ["word " * 818 + "word", "word " * 181]),
    ],
    ids=["exact-4096", "4097", "emoji-at-edge", "emoji-fits", "modifier-at-edge", "words"],
)
async def test_long_text_is_split(rig: Rig, body: str, expected: list[str]) -> None:
    result = await rig.adapter.send(outbound(body))
    sent = rig.fake.sent[CHAT]
    assert sent == expected
    assert result.segments == len(expected)
    assert result.provider_message_id == f"{CHAT}:1"


async def test_paragraphs_are_kept_whole(rig: Rig) -> None:
    paragraphs = [f"Paragraph {n}. " + "x" * 1500 for n in range(5)]
    await rig.adapter.send(outbound("\n\n".join(paragraphs)))
    sent = rig.fake.sent[CHAT]
    assert sent == ["\n\n".join(paragraphs[0:2]), "\n\n".join(paragraphs[2:4]), paragraphs[4]]


async def test_a_wrong_token_is_misconfigured() -> None:
    fake = FakeTelegramApi(token="999:other")
    async with httpx.AsyncClient(transport=fake.transport) as http:
        adapter = TelegramAdapter(token=TOKEN, webhook_secret="s", http_client=http)
        with pytest.raises(ChannelMisconfigured):
            await adapter.send(outbound("hello"))
        await adapter.aclose()


async def test_a_retry_after_a_partial_send_sends_only_the_rest(rig: Rig) -> None:
    body = "\n\n".join(["one " * 900, "two " * 900, "three " * 500])
    rig.fake.fail(CHAT, None, None, "throttle")  # parts 1 and 2 go, part 3 is throttled
    with pytest.raises(Throttled):
        await rig.adapter.send(outbound(body, message_id=77))
    assert len(rig.fake.sent[CHAT]) == 2
    result = await rig.adapter.send(outbound(body, message_id=77))
    sent = rig.fake.sent[CHAT]
    assert [part.split()[0] for part in sent] == ["one", "two", "three"]  # each exactly once
    assert result.provider_message_id == f"{CHAT}:1"  # the first part's id, from the first try
    assert result.segments == 3
    # Once done, the same id sends afresh (nothing left over from the partial send).
    await rig.adapter.send(outbound("again", message_id=77))
    assert rig.fake.sent[CHAT][-1] == "again"


async def test_a_permanent_failure_mid_message_forgets_progress(rig: Rig) -> None:
    body = "a " * 1500 + "\n\n" + "b " * 1500
    rig.fake.fail(CHAT, None, "blocked")
    with pytest.raises(RecipientOptedOut):
        await rig.adapter.send(outbound(body, message_id=5))
    await rig.adapter.send(outbound(body, message_id=5))
    assert len(rig.fake.sent[CHAT]) == 3  # starts over: a new channel or a new decision


async def test_media_urls_go_as_photo_or_document(rig: Rig) -> None:
    result = await rig.adapter.send(
        outbound(
            "Tonight's map",
            media_urls=["https://cdn.example.org/map.PNG?v=2", "https://cdn.example.org/list.pdf"],
        )
    )
    assert [
        (c.method, c.params.get("photo") or c.params.get("document")) for c in rig.fake.calls
    ] == [
        ("sendMessage", None),
        ("sendPhoto", "https://cdn.example.org/map.PNG?v=2"),
        ("sendDocument", "https://cdn.example.org/list.pdf"),
    ]
    assert result.segments == 3


async def test_a_blank_message_is_refused_without_a_call(rig: Rig) -> None:
    with pytest.raises(SendError):
        await rig.adapter.send(outbound("  \n "))
    assert rig.fake.calls == []


async def test_the_bot_token_never_reaches_the_logs(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        await rig.adapter.send(outbound("secret-free"))
        rig.fake.fail(CHAT, "chat_not_found")
        with pytest.raises(InvalidRecipient):
            await rig.adapter.send(outbound("again", message_id=2))
    assert "/bot<redacted>/sendMessage" in caplog.text
    assert TOKEN not in caplog.text
    assert TOKEN.split(":")[1] not in caplog.text


async def test_fake_accepts_json_bodies_too() -> None:
    fake = FakeTelegramApi()
    async with httpx.AsyncClient(transport=fake.transport) as http:
        answer = await http.post(
            f"{API}/bot{TOKEN}/sendMessage", json={"chat_id": 42, "text": "json body"}
        )
    assert answer.json()["result"]["text"] == "json body"
    assert fake.sent["42"] == ["json body"]
    assert json.loads(answer.content)["result"]["chat"]["id"] == 42
