"""GET /api/v1/conversations, their messages, POST …/read and GET /messages/{id}."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx

from storage.models import Conversation, Message, MessageAttempt, MessageStatusEvent
from tests.conftest import bearer, new_key

API = "/api/v1"


async def seed(client: httpx.AsyncClient) -> dict[str, Any]:
    """Seven supporters with conversations: activity ties, one never active, some unread."""
    ctx = client.ctx  # type: ignore[attr-defined]
    team = (await client.post(f"{API}/teams", json={"name": "North"})).json()
    now = ctx.clock()
    offsets = [5, 3, 3, 3, None, 1, 8]  # hours ago; None: no message yet
    supporters: list[int] = []
    for i in range(len(offsets)):
        response = await client.post(
            f"{API}/supporters",
            json={
                "name": f"S{i}",
                "teams": ["North"] if i < 2 else [],
                "assigned_to": "joe" if i == 1 else None,
            },
        )
        supporters.append(response.json()["id"])
    convos: list[int] = []
    async with ctx.sessions() as session:
        for i, (sid, hours) in enumerate(zip(supporters, offsets, strict=True)):
            convo = Conversation(
                supporter_id=sid,
                created_at=now - timedelta(hours=10),
                last_message_at=None if hours is None else now - timedelta(hours=hours),
                unread=i % 2 == 0,
                unread_count=1 if i % 2 == 0 else 0,
            )
            session.add(convo)
            await session.flush()
            assert convo.id is not None
            convos.append(convo.id)
        await session.commit()
    return {"team": team, "convos": convos, "supporters": supporters}


async def test_conversations_newest_first_each_once(client: httpx.AsyncClient) -> None:
    world = await seed(client)
    c = world["convos"]
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get(f"{API}/conversations", params=params)).json()
        seen.extend(page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            break
    # 1 h, then the three 3 h ties (higher id first), 5 h, 8 h, never (sorted by creation).
    assert [item["id"] for item in seen] == [c[5], c[3], c[2], c[1], c[0], c[6], c[4]]
    assert seen[0]["supporter_name"] == "S5"
    assert {"id", "supporter_id", "last_message_at", "unread", "unread_count"} <= set(seen[0])


async def test_conversation_filters_and_read(client: httpx.AsyncClient) -> None:
    world = await seed(client)
    c, s = world["convos"], world["supporters"]

    async def ids(**params: Any) -> list[int]:
        response = await client.get(f"{API}/conversations", params=params)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    assert await ids(unread="true") == [c[2], c[0], c[6], c[4]]
    assert await ids(supporter_id=s[3]) == [c[3]]
    assert await ids(assigned_to="joe") == [c[1]]
    assert await ids(team="North") == [c[1], c[0]]
    read = await client.post(f"{API}/conversations/{c[0]}/read")
    assert read.status_code == 200
    assert read.json()["unread"] is False and read.json()["unread_count"] == 0
    assert await ids(unread="true") == [c[2], c[6], c[4]]
    assert (await client.post(f"{API}/conversations/9999/read")).status_code == 404
    lead = bearer(await new_key(client.ctx, "team_lead", world["team"]["id"]))  # type: ignore[attr-defined]
    led = await client.get(f"{API}/conversations", headers=lead)
    assert [item["id"] for item in led.json()["items"]] == [c[1], c[0]]
    outside = await client.post(f"{API}/conversations/{c[2]}/read", headers=lead)
    assert outside.status_code == 404
    hidden = await client.get(f"{API}/conversations/{c[2]}/messages", headers=lead)
    assert hidden.status_code == 404


async def test_messages_oldest_first_and_message_detail(client: httpx.AsyncClient) -> None:
    ctx = client.ctx  # type: ignore[attr-defined]
    sid = (await client.post(f"{API}/supporters", json={"name": "M"})).json()["id"]
    now = ctx.clock()
    async with ctx.sessions() as session:
        convo = Conversation(supporter_id=sid, created_at=now)
        session.add(convo)
        await session.flush()
        assert convo.id is not None
        ids = []
        for i in range(7):
            message = Message(
                conversation_id=convo.id,
                supporter_id=sid,
                direction="inbound" if i % 2 else "outbound",
                channel="sms",
                body=f"m{i}",
                status="received" if i % 2 else "delivered",
                created_at=now + timedelta(minutes=i),
                updated_at=now + timedelta(minutes=i),
            )
            session.add(message)
            await session.flush()
            assert message.id is not None
            ids.append(message.id)
        session.add_all(
            [
                MessageAttempt(
                    message_id=ids[0],
                    channel="whatsapp",
                    address="+14155550100",
                    status="failed",
                    error="window closed",
                    created_at=now,
                ),
                MessageAttempt(
                    message_id=ids[0],
                    channel="sms",
                    address="+14155550100",
                    provider_message_id="SM1",
                    status="sent",
                    created_at=now,
                ),
                MessageStatusEvent(message_id=ids[0], status="sent", channel="sms", created_at=now),
                MessageStatusEvent(
                    message_id=ids[0], status="delivered", channel="sms", created_at=now
                ),
            ]
        )
        await session.commit()
        convo_id = convo.id
    bodies: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        response = await client.get(f"{API}/conversations/{convo_id}/messages", params=params)
        assert response.status_code == 200, response.text
        bodies.extend(m["body"] for m in response.json()["items"])
        cursor = response.json()["next_cursor"]
        if not cursor:
            break
    assert bodies == [f"m{i}" for i in range(7)]
    detail = (await client.get(f"{API}/messages/{ids[0]}")).json()
    assert [(a["channel"], a["status"]) for a in detail["attempts"]] == [
        ("whatsapp", "failed"),
        ("sms", "sent"),
    ]
    assert detail["attempts"][0]["error"] == "window closed"
    assert [h["status"] for h in detail["history"]] == ["sent", "delivered"]
    assert detail["conversation_id"] == convo_id and detail["supporter_id"] == sid
    assert (await client.get(f"{API}/messages/99999")).status_code == 404
