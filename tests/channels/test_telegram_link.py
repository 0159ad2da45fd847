"""Telegram deep links: `/start <token>` attaches the chat to the supporter holding the token."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
from sqlmodel import select

from storage.models import Conversation, Message, Supporter, SupporterAddress
from tests.channels.telegram_case import SETTINGS, load, post, text_update

ClientFactory = Callable[..., Awaitable[httpx.AsyncClient]]
TOKEN_IN_FIXTURE = "ab12CD34ef56"  # the payload in testdata/start_payload.json
CHAT = "5550001"


async def _supporter_with_token(
    client: httpx.AsyncClient, token: str | None, telegram: str | None = None
) -> int:
    ctx = client.ctx  # type: ignore[attr-defined]
    now = ctx.clock()
    async with ctx.sessions() as session:
        supporter = Supporter(
            name="Grace Njeri", telegram_link_token=token, created_at=now, updated_at=now
        )
        session.add(supporter)
        await session.flush()
        assert supporter.id is not None
        session.add(
            SupporterAddress(supporter_id=supporter.id, channel="sms", address="+254711000111")
        )
        if telegram:
            session.add(
                SupporterAddress(supporter_id=supporter.id, channel="telegram", address=telegram)
            )
        await session.commit()
        return supporter.id


async def _post(client: httpx.AsyncClient, data: dict[str, object]) -> None:
    request = post(data)
    answer = await client.post(request.path, headers=request.headers, content=request.content)
    assert answer.status_code == 200


async def _state(
    client: httpx.AsyncClient,
) -> tuple[list[Supporter], list[SupporterAddress], list[Message]]:
    async with client.ctx.sessions() as session:  # type: ignore[attr-defined]
        supporters = list((await session.exec(select(Supporter).order_by(Supporter.id))).all())
        addresses = list(
            (await session.exec(select(SupporterAddress).order_by(SupporterAddress.id))).all()
        )
        messages = list(
            (await session.exec(select(Message).where(Message.direction == "inbound"))).all()
        )
    return supporters, addresses, messages


async def test_start_with_the_token_links_the_chat(make_client: ClientFactory) -> None:
    client = await make_client(**SETTINGS)
    supporter_id = await _supporter_with_token(client, TOKEN_IN_FIXTURE)
    await _post(client, load("start_payload"))
    supporters, addresses, messages = await _state(client)
    assert [s.id for s in supporters] == [supporter_id]  # nobody new
    assert supporters[0].telegram_link_token is None  # used once
    assert {(a.supporter_id, a.channel, a.address) for a in addresses} == {
        (supporter_id, "sms", "+254711000111"),
        (supporter_id, "telegram", CHAT),
    }
    [message] = messages
    assert (message.supporter_id, message.body) == (supporter_id, "/start")
    async with client.ctx.sessions() as session:  # type: ignore[attr-defined]
        convo = await session.get(Conversation, message.conversation_id)
    assert convo is not None and convo.supporter_id == supporter_id
    # Later messages from the chat land with the same supporter.
    await _post(client, text_update(910000100, int(CHAT), "thanks!"))
    _, _, messages = await _state(client)
    assert {m.supporter_id for m in messages} == {supporter_id}


async def test_an_unknown_token_makes_a_new_supporter(make_client: ClientFactory) -> None:
    client = await make_client(**SETTINGS)
    supporter_id = await _supporter_with_token(client, "some-other-token")
    await _post(client, load("start_payload"))
    supporters, addresses, _ = await _state(client)
    assert len(supporters) == 2
    assert supporters[0].telegram_link_token == "some-other-token"
    [telegram] = [a for a in addresses if a.channel == "telegram"]
    assert telegram.supporter_id != supporter_id


async def test_a_known_chat_is_moved_and_its_own_supporter_merged(
    make_client: ClientFactory,
) -> None:
    client = await make_client(**SETTINGS)
    await _post(client, load("text"))  # the chat writes first: a supporter of its own
    supporter_id = await _supporter_with_token(client, TOKEN_IN_FIXTURE)
    await _post(client, load("start_payload"))
    supporters, addresses, messages = await _state(client)
    assert [(s.id, s.telegram_link_token) for s in supporters] == [(supporter_id, None)]
    [telegram] = [a for a in addresses if a.channel == "telegram"]
    assert (telegram.supporter_id, telegram.address) == (supporter_id, CHAT)
    assert len(messages) == 2
    assert {(m.supporter_id, m.conversation_id) for m in messages} == {
        (supporter_id, messages[-1].conversation_id)
    }


async def test_a_new_telegram_account_replaces_the_old_chat(make_client: ClientFactory) -> None:
    client = await make_client(**SETTINGS)
    supporter_id = await _supporter_with_token(client, TOKEN_IN_FIXTURE, telegram="4440004")
    await _post(client, load("start_payload"))
    _, addresses, _ = await _state(client)
    telegram = [(a.supporter_id, a.address) for a in addresses if a.channel == "telegram"]
    assert telegram == [(supporter_id, CHAT)]
