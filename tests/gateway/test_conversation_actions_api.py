"""The REST additions the console brings: conversation status and snooze, assignment to
console users, private notes and saved replies (httpx over ASGI)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import httpx

from gateway.users import create_user
from storage.models import Conversation
from tests.channels.twilio_case import SETTINGS, signed_post, sms_form
from tests.conftest import bearer, new_key

MakeClientFn = Callable[..., Awaitable[httpx.AsyncClient]]

API = "/api/v1"


async def seed_conversation(client: httpx.AsyncClient, name: str, teams: list[str]) -> int:
    ctx = client.ctx  # type: ignore[attr-defined]
    sid = (await client.post(f"{API}/supporters", json={"name": name, "teams": teams})).json()["id"]
    async with ctx.sessions() as session:
        convo = Conversation(supporter_id=sid, created_at=ctx.clock(), last_message_at=ctx.clock())
        session.add(convo)
        await session.commit()
        assert convo.id is not None
        return convo.id


async def user(client: httpx.AsyncClient, role: str, team_id: int | None = None) -> int:
    ctx = client.ctx  # type: ignore[attr-defined]
    async with ctx.sessions() as session:
        row = await create_user(
            session,
            email=f"{role}{team_id}@example.org",
            password="correct horse battery staple",
            role=role,
            team_id=team_id,
            name=None,
            now=ctx.clock(),
        )
    assert row.id is not None
    return row.id


async def ids(client: httpx.AsyncClient, **params: Any) -> list[int]:
    response = await client.get(f"{API}/conversations", params=params)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


async def test_resolve_snooze_reopen_and_filters(client: httpx.AsyncClient) -> None:
    ctx = client.ctx  # type: ignore[attr-defined]
    a = await seed_conversation(client, "Ada", [])
    b = await seed_conversation(client, "Bo", [])
    first = (await client.get(f"{API}/conversations")).json()["items"][0]
    assert first["status"] == "open" and first["snoozed_until"] is None
    resolved = await client.patch(f"{API}/conversations/{a}", json={"status": "resolved"})
    assert resolved.status_code == 200 and resolved.json()["status"] == "resolved"
    until = ctx.clock() + timedelta(hours=2)
    snoozed = await client.patch(
        f"{API}/conversations/{b}", json={"status": "snoozed", "snoozed_until": until.isoformat()}
    )
    assert snoozed.json()["status"] == "snoozed"
    assert snoozed.json()["snoozed_until"].startswith(until.isoformat()[:19])
    assert await ids(client, status="resolved") == [a]
    assert await ids(client, status="snoozed") == [b]
    assert await ids(client, status="open") == []
    ctx.clock.advance(hours=3)  # the snooze is due: back in the inbox by itself
    assert await ids(client, status="open") == [b]
    assert await ids(client, status="snoozed") == []
    reopened = await client.patch(f"{API}/conversations/{a}", json={"status": "open"})
    assert reopened.json()["status"] == "open"
    assert set(await ids(client, status="open")) == {a, b}


async def test_bad_status_changes_are_422_and_change_nothing(client: httpx.AsyncClient) -> None:
    ctx = client.ctx  # type: ignore[attr-defined]
    a = await seed_conversation(client, "Ada", [])
    past = (ctx.clock() - timedelta(minutes=1)).isoformat()
    for body in (
        {"status": "snoozed"},
        {"status": "snoozed", "snoozed_until": past},
        {"status": "snoozed", "snoozed_until": "2030-01-01T10:00:00"},  # no offset
        {"status": "closed"},
        {"status": "resolved", "assigned_user_id": 9999},
    ):
        response = await client.patch(f"{API}/conversations/{a}", json=body)
        assert response.status_code == 422, (body, response.text)
    assert (await client.get(f"{API}/conversations")).json()["items"][0]["status"] == "open"
    assert (await client.get(f"{API}/conversations", params={"status": "x"})).status_code == 422
    assert (await client.patch(f"{API}/conversations/999", json={})).status_code == 404


async def test_inbound_reopens_a_resolved_conversation(make_client: MakeClientFn) -> None:
    client = await make_client(**SETTINGS)
    client.headers.update(bearer(await new_key(client.ctx)))  # type: ignore[attr-defined]
    request = signed_post(sms_form("SM" + "1" * 32, "+14155550101", "hello"))
    assert (
        await client.post(request.path, headers=request.headers, content=request.content)
    ).status_code == 200
    [convo] = await ids(client)
    await client.patch(f"{API}/conversations/{convo}", json={"status": "resolved"})
    assert await ids(client, status="open") == []
    again = signed_post(sms_form("SM" + "2" * 32, "+14155550101", "one more thing"))
    assert (
        await client.post(again.path, headers=again.headers, content=again.content)
    ).status_code == 200
    assert await ids(client, status="open") == [convo]


async def test_assign_to_users_with_team_lead_scope(client: httpx.AsyncClient) -> None:
    north = (await client.post(f"{API}/teams", json={"name": "North"})).json()["id"]
    south = (await client.post(f"{API}/teams", json={"name": "South"})).json()["id"]
    nora = await seed_conversation(client, "Nora", ["North"])
    coordinator = await user(client, "coordinator")
    north_lead = await user(client, "team_lead", north)
    south_lead = await user(client, "team_lead", south)
    ok = await client.patch(f"{API}/conversations/{nora}", json={"assigned_user_id": north_lead})
    assert ok.status_code == 200 and ok.json()["assigned_user_id"] == north_lead
    assert await ids(client, assigned_user_id=north_lead) == [nora]
    # A lead of another team could not see it.
    cross = await client.patch(f"{API}/conversations/{nora}", json={"assigned_user_id": south_lead})
    assert cross.status_code == 422 and "team" in cross.text
    # A team lead assigns only within their team, and only conversations they see.
    lead = bearer(await new_key(client.ctx, "team_lead", north))  # type: ignore[attr-defined]
    to_coordinator = await client.patch(
        f"{API}/conversations/{nora}", json={"assigned_user_id": coordinator}, headers=lead
    )
    assert to_coordinator.status_code == 422
    unassign = await client.patch(
        f"{API}/conversations/{nora}", json={"assigned_user_id": None}, headers=lead
    )
    assert unassign.status_code == 200 and unassign.json()["assigned_user_id"] is None
    other = await seed_conversation(client, "Sam", ["South"])
    hidden = await client.patch(
        f"{API}/conversations/{other}", json={"status": "resolved"}, headers=lead
    )
    assert hidden.status_code == 404


async def test_notes_are_kept_and_scoped(client: httpx.AsyncClient) -> None:
    north = (await client.post(f"{API}/teams", json={"name": "North"})).json()["id"]
    await client.post(f"{API}/teams", json={"name": "South"})
    nora = await seed_conversation(client, "Nora", ["North"])
    sam = await seed_conversation(client, "Sam", ["South"])
    made = await client.post(f"{API}/conversations/{nora}/notes", json={"body": "Call her Friday"})
    assert made.status_code == 201
    assert made.json()["body"] == "Call her Friday" and made.json()["author"].startswith("key:")
    assert (
        await client.post(f"{API}/conversations/{nora}/notes", json={"body": "  "})
    ).status_code == 422
    listed = (await client.get(f"{API}/conversations/{nora}/notes")).json()
    assert [n["body"] for n in listed] == ["Call her Friday"]
    lead = bearer(await new_key(client.ctx, "team_lead", north))  # type: ignore[attr-defined]
    assert (await client.get(f"{API}/conversations/{nora}/notes", headers=lead)).status_code == 200
    assert (await client.get(f"{API}/conversations/{sam}/notes", headers=lead)).status_code == 404
    assert (
        await client.post(f"{API}/conversations/{sam}/notes", json={"body": "x"}, headers=lead)
    ).status_code == 404
    # Never sent: no message was queued to anyone.
    messages = (await client.get(f"{API}/conversations/{nora}/messages")).json()["items"]
    assert messages == []


async def test_saved_replies_crud(client: httpx.AsyncClient) -> None:
    made = await client.post(
        f"{API}/saved-replies", json={"title": "Welcome", "body": "Hi {first_name}, welcome!"}
    )
    assert made.status_code == 201, made.text
    reply = made.json()
    dup = await client.post(f"{API}/saved-replies", json={"title": "Welcome", "body": "x"})
    assert dup.status_code == 422
    changed = await client.patch(
        f"{API}/saved-replies/{reply['id']}", json={"body": "Hello {first_name}"}
    )
    assert changed.status_code == 200 and changed.json()["body"] == "Hello {first_name}"
    assert [r["title"] for r in (await client.get(f"{API}/saved-replies")).json()] == ["Welcome"]
    team = (await client.post(f"{API}/teams", json={"name": "North"})).json()["id"]
    lead = bearer(await new_key(client.ctx, "team_lead", team))  # type: ignore[attr-defined]
    forbidden = await client.patch(
        f"{API}/saved-replies/{reply['id']}", json={"title": "Mine"}, headers=lead
    )
    assert forbidden.status_code == 403
    own = await client.post(
        f"{API}/saved-replies", json={"title": "Lead's", "body": "b"}, headers=lead
    )
    assert own.status_code == 201
    gone = await client.delete(f"{API}/saved-replies/{own.json()['id']}", headers=lead)
    assert gone.status_code == 204
    assert (await client.delete(f"{API}/saved-replies/{reply['id']}")).status_code == 204
    assert (await client.get(f"{API}/saved-replies")).json() == []
    assert (await client.delete(f"{API}/saved-replies/{reply['id']}")).status_code == 404
