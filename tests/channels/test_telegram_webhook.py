"""Telegram webhooks through the real app: every testdata Update, replays, blocks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sqlmodel import select
from telegram import Update

from channels.telegram.fake import FakeTelegramApi
from storage.models import ConsentEvent, Message, Supporter, SupporterAddress
from tests.channels.telegram_case import SECRET, SETTINGS, TESTDATA, load, post, text_update

ClientFactory = Callable[..., Awaitable[httpx.AsyncClient]]
CHAT = "5550001"


@dataclass(frozen=True)
class Case:
    fixture: str
    status: int = 200
    # Expected stored message fields, or None when nothing may be stored.
    message: dict[str, Any] | None = None
    attachments: list[dict[str, Any]] = field(default_factory=list)


CASES = [
    Case(
        "text",
        message={
            "body": "Hi! I can canvass on Saturday 🙌",
            "address": CHAT,
            "provider_message_id": "910000001",
        },
    ),
    Case(
        "photo_caption",
        message={"body": "Flyers are up at the library", "address": CHAT},
        attachments=[
            {"content_type": "image/jpeg", "media_id": "AgACAgQAAxkBAAMSlarge", "size": 60512}
        ],
    ),
    Case(
        "document",
        message={"body": "", "address": CHAT},
        attachments=[
            {
                "content_type": "application/pdf",
                "media_id": "BQACAgQAAxkBAAMTdoc",
                "filename": "turf-list.pdf",
                "size": 48213,
            }
        ],
    ),
    Case("location", message={"body": "location: -1.292066,36.821946", "address": CHAT}),
    Case("start", message={"body": "/start", "address": CHAT}),
    Case("start_payload", message={"body": "/start", "address": CHAT}),
    Case("stop", message={"body": "/stop", "address": CHAT}),
    Case("group_message", message={"body": "Meeting point is the market gate"}),
    Case("group_service_message"),  # someone joined the group: no content, nothing stored
    Case("edited_message"),
    Case("callback_query"),
    Case("my_chat_member_kicked"),  # unknown chat: nothing to opt out, nothing stored
    Case("my_chat_member_member"),
    # Telegram's webhook guide sample lacks from.is_bot and chat.type: de_json refuses it.
    Case("guide_sample_malformed", status=400),
]


def test_every_testdata_file_has_a_case() -> None:
    assert {path.stem for path in TESTDATA.glob("*.json")} == {case.fixture for case in CASES}


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.fixture)
def test_testdata_is_what_telegram_sends(case: Case) -> None:
    data = load(case.fixture)
    if case.status == 400:
        with pytest.raises(TypeError):
            Update.de_json(data, None)
    else:
        assert Update.de_json(data, None).update_id == data["update_id"]


async def _messages(client: httpx.AsyncClient) -> list[Message]:
    async with client.ctx.sessions() as session:  # type: ignore[attr-defined]
        rows = await session.exec(select(Message).where(Message.direction == "inbound"))
        return list(rows.all())


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.fixture)
async def test_update_through_the_app(case: Case, make_client: ClientFactory) -> None:
    client = await make_client(transport=FakeTelegramApi().transport, **SETTINGS)
    request = post(load(case.fixture))
    response = await client.post(request.path, headers=request.headers, content=request.content)
    assert response.status_code == case.status
    stored = await _messages(client)
    if case.message is None:
        assert stored == []
        return
    assert len(stored) == 1
    message = stored[0]
    assert message.channel == "telegram"
    assert message.status == "received"
    for name, value in case.message.items():
        assert getattr(message, name) == value, name
    assert message.attachments == case.attachments
    assert message.raw is not None and str(load(case.fixture)["update_id"]) in message.raw


async def test_group_message_is_the_groups_conversation(make_client: ClientFactory) -> None:
    client = await make_client(**SETTINGS)
    request = post(load("group_message"))
    await client.post(request.path, headers=request.headers, content=request.content)
    async with client.ctx.sessions() as session:  # type: ignore[attr-defined]
        address = (await session.exec(select(SupporterAddress))).one()
        supporter = await session.get(Supporter, address.supporter_id)
    assert (address.channel, address.address) == ("telegram", "-1001987654321")
    assert supporter is not None and supporter.name == "Eastlands canvassers"


async def test_private_sender_is_named_after_the_user(make_client: ClientFactory) -> None:
    client = await make_client(**SETTINGS)
    request = post(load("text"))
    await client.post(request.path, headers=request.headers, content=request.content)
    async with client.ctx.sessions() as session:  # type: ignore[attr-defined]
        supporter = (await session.exec(select(Supporter))).one()
    assert supporter.name == "Amina Otieno"


async def test_replayed_update_is_stored_once(make_client: ClientFactory) -> None:
    client = await make_client(**SETTINGS)
    request = post(load("photo_caption"))
    answers = [
        await client.post(request.path, headers=request.headers, content=request.content)
        for _ in range(3)
    ]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert len(await _messages(client)) == 1


async def test_two_updates_with_the_same_text_are_two_messages(
    make_client: ClientFactory,
) -> None:
    client = await make_client(**SETTINGS)
    for update_id in (41, 42):
        request = post(text_update(update_id, 5550003, "same words"))
        await client.post(request.path, headers=request.headers, content=request.content)
    stored = await _messages(client)
    assert sorted(m.provider_message_id or "" for m in stored) == ["41", "42"]


@pytest.mark.parametrize(
    ("content", "label"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "array"),
        (b'{"update_id": "12"}', "string update_id"),
        (b'{"update_id": 12, "message": {"text": "no date or chat"}}', "broken message"),
    ],
)
async def test_signed_garbage_is_400(
    content: bytes, label: str, make_client: ClientFactory
) -> None:
    client = await make_client(**SETTINGS)
    request = post(content)
    response = await client.post(request.path, headers=request.headers, content=request.content)
    assert response.status_code == 400, label
    assert await _messages(client) == []


async def test_wrong_or_missing_secret_is_403(make_client: ClientFactory) -> None:
    client = await make_client(**SETTINGS)
    for secret in (None, "", f"{SECRET} ", SECRET.upper()):
        request = post(load("text"), secret=secret)
        answer = await client.post(request.path, headers=request.headers, content=request.content)
        assert answer.status_code == 403, secret
    assert await _messages(client) == []


async def _opt_state(client: httpx.AsyncClient) -> tuple[bool, bool, list[ConsentEvent]]:
    async with client.ctx.sessions() as session:  # type: ignore[attr-defined]
        address = (
            await session.exec(select(SupporterAddress).where(SupporterAddress.address == CHAT))
        ).one()
        supporter = await session.get(Supporter, address.supporter_id)
        events = list((await session.exec(select(ConsentEvent))).all())
    assert supporter is not None
    return address.opted_out, supporter.opted_out, events


async def test_blocking_the_bot_opts_the_chat_out(make_client: ClientFactory) -> None:
    client = await make_client(**SETTINGS)
    for fixture in ("text", "my_chat_member_kicked"):
        request = post(load(fixture))
        answer = await client.post(request.path, headers=request.headers, content=request.content)
        assert answer.status_code == 200
    address_out, supporter_out, events = await _opt_state(client)
    assert (address_out, supporter_out) == (True, True)
    assert [(e.action, e.channel, e.reason) for e in events] == [
        ("opt_out", "telegram", "blocked the bot")
    ]
    # Unblocking reopens the chat (the supporter's own consent stays with routing's rules).
    request = post(load("my_chat_member_member"))
    await client.post(request.path, headers=request.headers, content=request.content)
    address_out, _, _ = await _opt_state(client)
    assert address_out is False


async def test_stop_command_opts_the_supporter_out(make_client: ClientFactory) -> None:
    client = await make_client(transport=FakeTelegramApi().transport, **SETTINGS)
    request = post(load("stop"))
    await client.post(request.path, headers=request.headers, content=request.content)
    _, supporter_out, events = await _opt_state(client)
    assert supporter_out is True
    assert [e.action for e in events] == ["opt_out"]
