"""A Telegram deep link opened by a chat we already know (signed webhooks, Bot API fake):
the chat moves to the link's supporter; the supporter it had made is merged into them only
when it is nothing but that chat."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlmodel import SQLModel, col, select

from channels.telegram.fake import FakeTelegramApi
from routing.people.merge import HANDLED_REFERENCES
from storage.models import Message, Supporter
from tests.channels.telegram_case import SETTINGS, TOKEN, post, text_update
from tests.conftest import bearer, new_key

MakeClient = Callable[..., Awaitable[httpx.AsyncClient]]
API = "/api/v1"
CHAT = 5550188
PHONE = "+14155550188"
_update_ids = iter(range(920000000, 930000000))


async def organizer(make_client: MakeClient) -> httpx.AsyncClient:
    client = await make_client(transport=FakeTelegramApi(TOKEN).transport, **SETTINGS)
    client.headers.update(bearer(await new_key(client.ctx)))  # type: ignore[attr-defined]
    return client


async def chat_says(client: httpx.AsyncClient, text: str, chat: int = CHAT) -> None:
    request = post(text_update(next(_update_ids), chat, text))
    answer = await client.post(request.path, headers=request.headers, content=request.content)
    assert answer.status_code == 200


async def api(client: httpx.AsyncClient, method: str, path: str, **kwargs: Any) -> Any:
    answer = await client.request(method, API + path, **kwargs)
    assert answer.is_success, answer.text
    return answer.json()


async def amina_with_link(client: httpx.AsyncClient, **fields: Any) -> tuple[int, str]:
    amina = await api(client, "POST", "/supporters", json={"name": "Amina Otieno", **fields})
    link = await api(client, "POST", f"/supporters/{amina['id']}/telegram-link")
    return amina["id"], link["token"]


async def inbound_by_supporter(client: httpx.AsyncClient) -> dict[str, int]:
    async with client.ctx.sessions() as session:  # type: ignore[attr-defined]
        rows = await session.exec(
            select(Message).where(Message.direction == "inbound").order_by(col(Message.id))
        )
        return {m.body: m.supporter_id for m in rows.all()}


async def stored(client: httpx.AsyncClient, supporter_id: int) -> Supporter | None:
    async with client.ctx.sessions() as session:  # type: ignore[attr-defined]
        return await session.get(Supporter, supporter_id)


@pytest.mark.parametrize(
    "change",
    [
        {
            "addresses": [
                {"channel": "telegram", "address": str(CHAT)},
                {"channel": "sms", "address": PHONE},
            ]
        },
        {"tags": ["driver"]},
        {"assigned_to": "maria@rally.example.org"},
    ],
    ids=["another address", "a tag", "an assignee"],
)
async def test_a_chat_whose_supporter_is_more_than_that_chat_moves_alone(
    make_client: MakeClient, change: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    client = await organizer(make_client)
    await chat_says(client, "I can drive on Saturday")
    [stranger] = (await api(client, "GET", "/supporters"))["items"]
    await api(client, "PATCH", f"/supporters/{stranger['id']}", json=change)
    amina_id, token = await amina_with_link(client)

    with caplog.at_level(logging.INFO):
        await chat_says(client, f"/start {token}")

    kept = await api(client, "GET", f"/supporters/{stranger['id']}")
    assert ("telegram", str(CHAT)) not in {(a["channel"], a["address"]) for a in kept["addresses"]}
    amina = await api(client, "GET", f"/supporters/{amina_id}")
    assert [(a["channel"], a["address"]) for a in amina["addresses"]] == [("telegram", str(CHAT))]
    assert await inbound_by_supporter(client) == {
        "I can drive on Saturday": stranger["id"],  # what they said before stays theirs
        "/start": amina_id,
    }
    said = "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.INFO)
    assert f"to supporter={amina_id} by deep link; not merged" in said
    for private in ("Amina", "Wanjiru", "drive", token, TOKEN):
        assert private not in said


async def test_a_team_keeps_the_supporter_too(make_client: MakeClient) -> None:
    client = await organizer(make_client)
    team = await api(client, "POST", "/teams", json={"name": "Drivers"})
    await chat_says(client, "hi")
    [stranger] = (await api(client, "GET", "/supporters"))["items"]
    await api(client, "PATCH", f"/supporters/{stranger['id']}", json={"teams": [team["id"]]})
    amina_id, token = await amina_with_link(client)
    await chat_says(client, f"/start {token}")
    assert len((await api(client, "GET", "/supporters"))["items"]) == 2
    assert (await inbound_by_supporter(client))["hi"] == stranger["id"]


async def test_a_link_for_the_chat_the_supporter_already_has_changes_nothing(
    make_client: MakeClient,
) -> None:
    client = await organizer(make_client)
    chat = {"channel": "telegram", "address": str(CHAT)}
    amina_id, token = await amina_with_link(client, addresses=[chat])
    await chat_says(client, "hello")
    before = await api(client, "GET", f"/supporters/{amina_id}")

    await chat_says(client, f"/start {token}")

    after = await api(client, "GET", f"/supporters/{amina_id}")
    assert [s["id"] for s in (await api(client, "GET", "/supporters"))["items"]] == [amina_id]
    assert after["addresses"] == before["addresses"]
    assert await inbound_by_supporter(client) == {"hello": amina_id, "/start": amina_id}
    supporter = await stored(client, amina_id)
    assert supporter is not None and supporter.telegram_link_token is None  # spent all the same


async def test_a_chat_moves_off_a_supporter_an_organizer_made(make_client: MakeClient) -> None:
    client = await organizer(make_client)
    chat = {"channel": "telegram", "address": str(CHAT)}
    made = await api(client, "POST", "/supporters", json={"name": "A. O.", "addresses": [chat]})
    amina_id, token = await amina_with_link(client)
    await chat_says(client, f"/start {token}")
    assert await api(client, "GET", f"/supporters/{made['id']}") is not None  # source "api"
    assert (await inbound_by_supporter(client))["/start"] == amina_id


def test_every_reference_to_a_supporter_is_handled_by_the_merge() -> None:
    """Deleting the merged supporter cascades: a table added later that refers to
    supporters or conversations must be taught to merge_supporter first."""
    references = {
        (table.name, fk.parent.name)
        for table in SQLModel.metadata.sorted_tables
        for fk in table.foreign_keys
        if fk.column.table.name in ("supporters", "conversations")
    }
    assert references == HANDLED_REFERENCES
