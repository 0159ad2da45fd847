"""POST/GET/PATCH/DELETE /api/v1/supporters over HTTP: validation, uniqueness, pagination."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func
from sqlmodel import select

from routing.outbound.queue import queue_message
from storage.models import (
    Conversation,
    Message,
    MessageAttempt,
    MessageStatusEvent,
    OutboxItem,
    Supporter,
    SupporterAddress,
    SupporterTag,
    TeamMembership,
)

API = "/api/v1"


async def make_supporter(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    body.setdefault("name", "Amina")
    response = await client.post(f"{API}/supporters", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def make_team(client: httpx.AsyncClient, name: str) -> dict[str, Any]:
    response = await client.post(f"{API}/teams", json={"name": name})
    assert response.status_code == 201, response.text
    return dict(response.json())


async def count(client: httpx.AsyncClient, model: Any) -> int:
    async with client.ctx.sessions() as session:  # type: ignore[attr-defined]
        return int((await session.exec(select(func.count()).select_from(model))).one())


async def test_create_normalises_addresses_and_answers_the_supporter(
    client: httpx.AsyncClient,
) -> None:
    team = await make_team(client, "Nairobi")
    created = await make_supporter(
        client,
        name="Amina Otieno",
        addresses=[
            {"channel": "sms", "address": "(415) 555-0100"},
            {"channel": "whatsapp", "address": "whatsapp:+1 415 555 0100"},
            {"channel": "email", "address": "Amina@Example.ORG"},
            {"channel": "telegram", "address": " 12345 "},
        ],
        preferred_channels=["telegram", "sms"],
        language="sw",
        timezone="Africa/Nairobi",
        tags=["driver", "driver", "canvasser"],
        teams=["Nairobi"],
        assigned_to="joe",
    )
    assert created["addresses"] == [
        {"channel": "sms", "address": "+14155550100", "opted_out": False, "last_inbound_at": None},
        {
            "channel": "whatsapp",
            "address": "+14155550100",
            "opted_out": False,
            "last_inbound_at": None,
        },
        {
            "channel": "email",
            "address": "amina@example.org",
            "opted_out": False,
            "last_inbound_at": None,
        },
        {"channel": "telegram", "address": "12345", "opted_out": False, "last_inbound_at": None},
    ]
    assert created["tags"] == ["canvasser", "driver"]
    assert created["teams"] == [{"id": team["id"], "name": "Nairobi"}]
    assert created["preferred_channels"] == ["telegram", "sms"]
    assert created["timezone"] == "Africa/Nairobi"
    assert created["opted_out"] is False
    assert created["source"] == "api"
    assert created["stats"] == {"messages_in": 0, "messages_out": 0, "one_on_ones": 0}
    fetched = await client.get(f"{API}/supporters/{created['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == created


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        (
            {"addresses": [{"channel": "sms", "address": "12"}]},
            ["body", "addresses", 0, "address"],
        ),
        (
            {
                "addresses": [
                    {"channel": "telegram", "address": "99"},
                    {"channel": "email", "address": "not-an-email"},
                ]
            },
            ["body", "addresses", 1, "address"],
        ),
        ({"addresses": [{"channel": "fax", "address": "1"}]}, ["body", "addresses", 0, "channel"]),
        ({"timezone": "Mars/Olympus"}, ["body", "timezone"]),
        ({"preferred_channels": ["sms", "pigeon"]}, ["body", "preferred_channels", 1]),
        ({"teams": ["nobody"]}, ["body", "teams", 0]),
        ({"name": ""}, ["body", "name"]),
    ],
)
async def test_invalid_fields_are_422_naming_the_field(
    client: httpx.AsyncClient, body: dict[str, Any], loc: list[Any]
) -> None:
    response = await client.post(f"{API}/supporters", json={"name": "X", **body})
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == [".".join(map(str, loc))]
    assert await count(client, SupporterAddress) == 0


async def test_a_phone_number_belongs_to_one_supporter_across_sms_and_whatsapp(
    client: httpx.AsyncClient,
) -> None:
    first = await make_supporter(client, addresses=[{"channel": "sms", "address": "+14155550100"}])
    for channel in ("sms", "whatsapp"):
        response = await client.post(
            f"{API}/supporters",
            json={"name": "Other", "addresses": [{"channel": channel, "address": "4155550100"}]},
        )
        assert response.status_code == 409, response.text
        assert str(first["id"]) in response.json()["detail"]
    taken_email = await make_supporter(
        client, name="E", addresses=[{"channel": "email", "address": "e@example.org"}]
    )
    response = await client.post(
        f"{API}/supporters",
        json={"name": "F", "addresses": [{"channel": "email", "address": "E@EXAMPLE.org"}]},
    )
    assert response.status_code == 409
    # PATCH: taking another supporter's number is refused too, and nothing changes.
    response = await client.patch(
        f"{API}/supporters/{taken_email['id']}",
        json={"addresses": [{"channel": "whatsapp", "address": "+14155550100"}]},
    )
    assert response.status_code == 409
    again = await client.get(f"{API}/supporters/{taken_email['id']}")
    assert [a["address"] for a in again.json()["addresses"]] == ["e@example.org"]
    assert await count(client, SupporterAddress) == 2


async def test_patch_replaces_given_fields_only(client: httpx.AsyncClient) -> None:
    await make_team(client, "A")
    b = await make_team(client, "B")
    created = await make_supporter(
        client,
        addresses=[
            {"channel": "sms", "address": "+14155550100"},
            {"channel": "email", "address": "a@example.org"},
        ],
        tags=["x"],
        teams=["A"],
        language="en",
    )
    response = await client.patch(
        f"{API}/supporters/{created['id']}",
        json={
            "addresses": [
                {"channel": "email", "address": "a@example.org"},
                {"channel": "telegram", "address": "777"},
            ],
            "tags": ["y", "z"],
            "teams": [str(b["id"])],
            "language": None,
        },
    )
    assert response.status_code == 200, response.text
    patched = response.json()
    assert [(a["channel"], a["address"]) for a in patched["addresses"]] == [
        ("email", "a@example.org"),
        ("telegram", "777"),
    ]
    assert patched["tags"] == ["y", "z"]
    assert patched["teams"] == [{"id": b["id"], "name": "B"}]
    assert patched["language"] is None
    assert patched["name"] == "Amina"
    # The freed phone number can now be someone else's.
    await make_supporter(
        client, name="N", addresses=[{"channel": "sms", "address": "+14155550100"}]
    )


async def test_unknown_supporter_is_404(client: httpx.AsyncClient) -> None:
    assert (await client.get(f"{API}/supporters/999")).status_code == 404
    assert (await client.patch(f"{API}/supporters/999", json={"name": "x"})).status_code == 404
    assert (await client.delete(f"{API}/supporters/999")).status_code == 404


async def test_pagination_returns_every_row_exactly_once(client: httpx.AsyncClient) -> None:
    for i in range(23):
        await make_supporter(client, name=f"S{i:02}")
    seen: list[int] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 5}
        if cursor:
            params["cursor"] = cursor
        response = await client.get(f"{API}/supporters", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= 5
        seen.extend(item["id"] for item in page["items"])
        pages += 1
        if pages == 2:  # rows added mid-way show up once, on a later page
            await make_supporter(client, name="late 1")
            await make_supporter(client, name="late 2")
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 5
    assert len(seen) == 25 == len(set(seen))
    assert seen == sorted(seen)


async def test_list_limits_and_cursor_are_validated(client: httpx.AsyncClient) -> None:
    assert (await client.get(f"{API}/supporters", params={"limit": 501})).status_code == 422
    assert (await client.get(f"{API}/supporters", params={"limit": 0})).status_code == 422
    bad = await client.get(f"{API}/supporters", params={"cursor": "garbage!"})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "query.cursor"
    unknown_team = await client.get(f"{API}/supporters", params={"team": "nope"})
    assert unknown_team.status_code == 422


async def test_list_filters(client: httpx.AsyncClient) -> None:
    team = await make_team(client, "Kisumu")
    a = await make_supporter(
        client,
        name="Wanjiru",
        addresses=[{"channel": "sms", "address": "+254712345678"}],
        tags=["driver"],
        teams=["Kisumu"],
        assigned_to="joe",
    )
    b = await make_supporter(
        client, name="Brian", addresses=[{"channel": "email", "address": "brian@example.org"}]
    )

    async def ids(**params: Any) -> list[int]:
        response = await client.get(f"{API}/supporters", params=params)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    assert await ids() == [a["id"], b["id"]]
    assert await ids(team="Kisumu") == [a["id"]]
    assert await ids(team=team["id"]) == [a["id"]]
    assert await ids(tag="driver") == [a["id"]]
    assert await ids(channel="email") == [b["id"]]
    assert await ids(q="wanj") == [a["id"]]
    assert await ids(q="example.org") == [b["id"]]
    assert await ids(q="%") == []
    assert await ids(assigned_to="joe") == [a["id"]]
    assert await ids(opted_out="false") == [a["id"], b["id"]]
    assert await ids(opted_out="true") == []


async def test_delete_forgets_the_supporter_and_everything_about_them(
    client: httpx.AsyncClient,
) -> None:
    ctx = client.ctx  # type: ignore[attr-defined]
    await make_team(client, "T")
    gone = await make_supporter(
        client,
        addresses=[{"channel": "sms", "address": "+14155550100"}],
        tags=["x"],
        teams=["T"],
    )
    kept = await make_supporter(
        client, name="Kept", addresses=[{"channel": "sms", "address": "+14155550111"}]
    )
    now = ctx.clock()
    async with ctx.sessions() as session:
        for supporter_id in (gone["id"], kept["id"]):
            convo = Conversation(supporter_id=supporter_id, created_at=now)
            session.add(convo)
            await session.flush()
            assert convo.id is not None
            message = Message(
                conversation_id=convo.id,
                supporter_id=supporter_id,
                direction="outbound",
                channel="sms",
                address="+1",
                body="hello",
                status="queued",
                created_at=now,
                updated_at=now,
            )
            session.add(message)
            await session.flush()
            assert message.id is not None
            session.add(OutboxItem(message_id=message.id, due_at=now, created_at=now))
            session.add(
                MessageAttempt(
                    message_id=message.id,
                    channel="sms",
                    address="+1",
                    status="sent",
                    created_at=now,
                )
            )
            session.add(MessageStatusEvent(message_id=message.id, status="sent", created_at=now))
        await session.commit()

    response = await client.delete(f"{API}/supporters/{gone['id']}")
    assert response.status_code == 204
    assert (await client.get(f"{API}/supporters/{gone['id']}")).status_code == 404
    assert (await client.delete(f"{API}/supporters/{gone['id']}")).status_code == 404
    for model in (
        Conversation,
        Message,
        OutboxItem,
        MessageAttempt,
        MessageStatusEvent,
        SupporterAddress,
    ):
        assert await count(client, model) == 1, model
    assert await count(client, SupporterTag) == 0
    assert await count(client, TeamMembership) == 0
    assert (await client.get(f"{API}/supporters/{kept['id']}")).status_code == 200


async def test_stats_count_messages(client: httpx.AsyncClient) -> None:
    ctx = client.ctx  # type: ignore[attr-defined]
    created = await make_supporter(client)
    async with ctx.sessions() as session:
        supporter = await session.get(Supporter, created["id"])
        assert supporter is not None
        # No channel is configured, so these are stored as failed: still counted as out.
        await queue_message(session, ctx, supporter, "one")
        await queue_message(session, ctx, supporter, "two", kind="announcement")
        await session.commit()
    stats = (await client.get(f"{API}/supporters/{created['id']}")).json()["stats"]
    assert stats == {"messages_in": 0, "messages_out": 2, "one_on_ones": 1}


async def test_telegram_link_token_is_made_once(client: httpx.AsyncClient) -> None:
    created = await make_supporter(client)
    first = await client.post(f"{API}/supporters/{created['id']}/telegram-link")
    assert first.status_code == 200
    token = first.json()["token"]
    assert len(token) >= 20
    assert first.json()["start_parameter"] == token
    second = await client.post(f"{API}/supporters/{created['id']}/telegram-link")
    assert second.json()["token"] == token
    async with client.ctx.sessions() as session:  # type: ignore[attr-defined]
        row = await session.get(Supporter, created["id"])
        assert row is not None and row.telegram_link_token == token
