"""GET /api/v1/announcements/{id}/recipients (who replied, who did not; a poll: who
answered) and GET /api/v1/polls, over HTTP, with team-lead scope."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlmodel import select

from routing.context import AppContext
from storage.models import Message, PollAnswer
from tests.conftest import bearer, new_key
from tests.gateway.seed import add_member, make_team
from tests.routing.fake_adapter import FakeAdapter

API = "/api/v1"


async def write_in(ctx: AppContext, supporter_id: int, body: str = "yes!") -> None:
    """An inbound message from the supporter now (into their conversation)."""
    async with ctx.sessions() as session:
        first = (
            await session.exec(select(Message).where(Message.supporter_id == supporter_id))
        ).first()
        assert first is not None
        now = ctx.clock()
        session.add(
            Message(
                conversation_id=first.conversation_id,
                supporter_id=supporter_id,
                direction="inbound",
                kind="inbound",
                channel="sms",
                address=first.address,
                body=body,
                status="received",
                created_at=now,
                updated_at=now,
            )
        )
        await session.commit()


@pytest.fixture
async def world(client: httpx.AsyncClient) -> dict[str, Any]:
    ctx = client.ctx  # type: ignore[attr-defined]
    ctx.registry.add(FakeAdapter(channels=("sms",)))
    north, south = await make_team(ctx, "North"), await make_team(ctx, "South")
    ids = [
        await add_member(ctx, {"sms": f"+1415555060{i}"}, teams=[north], name=f"N{i}")
        for i in range(3)
    ]
    await add_member(ctx, {"sms": "+14155550699"}, teams=[south], name="S")
    return {"client": client, "ctx": ctx, "north": north, "south": south, "ids": ids}


async def test_recipients_say_who_replied(world: dict[str, Any]) -> None:
    client, ctx, ids = world["client"], world["ctx"], world["ids"]
    made = await client.post(
        f"{API}/announcements", json={"body": "Rally", "audience": {"teams": ["North"]}}
    )
    announcement_id = made.json()["id"]
    ctx.clock.advance(minutes=1)
    await write_in(ctx, ids[1])
    url = f"{API}/announcements/{announcement_id}/recipients"

    everyone = (await client.get(url)).json()
    assert [r["supporter_id"] for r in everyone["items"]] == ids
    assert [r["replied_at"] is not None for r in everyone["items"]] == [False, True, False]
    assert {(r["channel"], r["status"]) for r in everyone["items"]} == {("sms", "queued")}
    replied = (await client.get(url, params={"replied": "true"})).json()["items"]
    assert [(r["supporter_id"], r["name"]) for r in replied] == [(ids[1], "N1")]
    silent = (await client.get(url, params={"replied": "false"})).json()["items"]
    assert [r["supporter_id"] for r in silent] == [ids[0], ids[2]]

    first = (await client.get(url, params={"limit": 2})).json()
    rest = (await client.get(url, params={"limit": 2, "cursor": first["next_cursor"]})).json()
    assert [r["supporter_id"] for r in first["items"] + rest["items"]] == ids
    assert rest["next_cursor"] is None

    south_lead = bearer(await new_key(ctx, "team_lead", world["south"]))
    assert (await client.get(url, headers=south_lead)).status_code == 404


async def test_a_polls_recipients_say_who_answered_and_polls_are_listed(
    world: dict[str, Any],
) -> None:
    client, ctx, ids = world["client"], world["ctx"], world["ids"]
    made = await client.post(
        f"{API}/polls",
        json={"question": "Day?", "options": ["Sat", "Sun"], "audience": {"teams": ["North"]}},
    )
    poll = made.json()
    async with ctx.sessions() as session:
        session.add(
            PollAnswer(
                poll_id=poll["id"],
                supporter_id=ids[2],
                option_index=1,
                channel="sms",
                answered_at=ctx.clock(),
            )
        )
        await session.commit()
    url = f"{API}/announcements/{poll['announcement_id']}/recipients"
    answered = (await client.get(url, params={"replied": "true"})).json()["items"]
    assert [(r["supporter_id"], r["answer"]) for r in answered] == [(ids[2], 1)]
    waiting = (await client.get(url, params={"replied": "false"})).json()["items"]
    assert [r["supporter_id"] for r in waiting] == ids[:2]

    other = await client.post(
        f"{API}/polls",
        json={"question": "Time?", "options": ["am", "pm"], "audience": {"teams": ["South"]}},
    )
    listed = (await client.get(f"{API}/polls")).json()["items"]
    assert [p["id"] for p in listed] == [other.json()["id"], poll["id"]]
    north_lead = bearer(await new_key(ctx, "team_lead", world["north"]))
    theirs = (await client.get(f"{API}/polls", headers=north_lead)).json()["items"]
    assert [p["id"] for p in theirs] == [poll["id"]]
    page = (await client.get(f"{API}/polls", params={"limit": 1})).json()
    assert page["next_cursor"]
    rest = (await client.get(f"{API}/polls", params={"cursor": page["next_cursor"]})).json()
    assert [p["id"] for p in rest["items"]] == [poll["id"]]
