"""POST/GET /api/v1/announcements over HTTP: fan-out into the outbox, idempotency,
team-lead scope, dry runs, delivery counts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from storage.models import Announcement, Message, OutboxItem
from tests.conftest import FakeClock, bearer, new_key
from tests.gateway.seed import add_member, count, make_team, messages_of, outbox_by_message
from tests.routing.fake_adapter import FakeAdapter

API = "/api/v1"


@pytest.fixture
async def world(client: httpx.AsyncClient) -> dict[str, Any]:
    """Team North: one member on sms, one on telegram, one opted out, one reachable only
    by email (not configured); team South: one member. sms and telegram are configured."""
    ctx = client.ctx  # type: ignore[attr-defined]
    ctx.registry.add(FakeAdapter(channels=("sms", "telegram")))
    north = await make_team(ctx, "North")
    south = await make_team(ctx, "South")
    ids = {
        "sms": await add_member(ctx, {"sms": "+14155550101"}, teams=[north], tags=["driver"]),
        "telegram": await add_member(
            ctx, {"telegram": "4242", "sms": "+14155550102"}, teams=[north], language="es-MX"
        ),
        "opted_out": await add_member(ctx, {"sms": "+14155550103"}, teams=[north], opted_out=True),
        "email_only": await add_member(ctx, {"email": "e@example.org"}, teams=[north]),
        "south": await add_member(ctx, {"sms": "+14155550104"}, teams=[south], tags=["driver"]),
    }
    return {"client": client, "ctx": ctx, "north": north, "south": south, "ids": ids}


async def test_fan_out_to_a_team_writes_one_message_per_member(world: dict[str, Any]) -> None:
    client, ctx, ids = world["client"], world["ctx"], world["ids"]
    answer = await client.post(
        f"{API}/announcements", json={"body": "Rally at noon", "audience": {"teams": ["North"]}}
    )
    assert answer.status_code == 202, answer.text
    data = answer.json()
    assert data["recipients"] == 4 and data["state"] == "fanned_out"
    messages = {m.supporter_id: m for m in await messages_of(ctx, data["id"])}
    assert set(messages) == {ids["sms"], ids["telegram"], ids["opted_out"], ids["email_only"]}
    assert (messages[ids["sms"]].channel, messages[ids["sms"]].status) == ("sms", "queued")
    assert messages[ids["sms"]].segments == 1 and messages[ids["sms"]].kind == "announcement"
    # Default order whatsapp, telegram, sms: telegram wins for the member who has both.
    assert (messages[ids["telegram"]].channel, messages[ids["telegram"]].status) == (
        "telegram",
        "queued",
    )
    assert messages[ids["opted_out"]].status == "skipped"
    assert messages[ids["email_only"]].status == "failed"
    assert "email: not configured" in (messages[ids["email_only"]].error or "")
    outbox = await outbox_by_message(ctx)
    queued = {m.id for m in messages.values() if m.status == "queued"}
    assert set(outbox) == queued
    assert all(item.priority == 1 for item in outbox.values())

    report = (await client.get(f"{API}/announcements/{data['id']}")).json()
    assert report["recipients"] == 4
    assert report["counts"] == {"queued": 2, "skipped": 1, "failed": 1}
    assert report["by_channel"] == {
        "sms": {"queued": 1},
        "telegram": {"queued": 1},
        "none": {"skipped": 1, "failed": 1},
    }
    assert report["segments"] == 1
    assert [(f["supporter_id"], f["status"]) for f in report["failures"]] == [
        (ids["email_only"], "failed")
    ]


async def test_idempotency_key_replays_and_conflicts(world: dict[str, Any]) -> None:
    client, ctx = world["client"], world["ctx"]
    body = {"body": "Rally at noon", "audience": {"teams": [world["north"]]}}
    headers = {"Idempotency-Key": "rally-1"}
    first = await client.post(f"{API}/announcements", json=body, headers=headers)
    assert first.status_code == 202
    rows = await count(ctx, Message), await count(ctx, OutboxItem)
    again = await client.post(f"{API}/announcements", json=body, headers=headers)
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["recipients"] == first.json()["recipients"]
    assert (await count(ctx, Message), await count(ctx, OutboxItem)) == rows
    other = await client.post(
        f"{API}/announcements", json={**body, "body": "Rally at one"}, headers=headers
    )
    assert other.status_code == 409
    assert await count(ctx, Announcement) == 1
    # Without a key, the same body is a new announcement.
    fresh = await client.post(f"{API}/announcements", json=body)
    assert fresh.status_code == 202 and fresh.json()["id"] != first.json()["id"]


async def test_team_lead_may_announce_to_their_team_only(world: dict[str, Any]) -> None:
    client, ctx = world["client"], world["ctx"]
    lead = bearer(await new_key(ctx, "team_lead", world["north"]))
    post = f"{API}/announcements"
    for audience in (
        {"teams": ["South"]},
        {"teams": ["North", "South"]},
        {"tags": ["driver"]},
        {"all": True},
    ):
        answer = await client.post(post, json={"body": "x", "audience": audience}, headers=lead)
        assert answer.status_code == 403, audience
    assert await count(ctx, Announcement) == 0
    ours = await client.post(
        post, json={"body": "x", "audience": {"teams": ["North"], "tags": ["driver"]}}, headers=lead
    )
    assert ours.status_code == 202 and ours.json()["recipients"] == 1
    theirs = await client.post(post, json={"body": "y", "audience": {"teams": ["South"]}})
    assert theirs.status_code == 202
    seen = await client.get(f"{API}/announcements/{theirs.json()['id']}", headers=lead)
    assert seen.status_code == 404
    assert (await client.get(f"{API}/announcements/{ours.json()['id']}", headers=lead)).is_success
    listed = (await client.get(f"{API}/announcements", headers=lead)).json()["items"]
    assert [a["id"] for a in listed] == [ours.json()["id"]]


async def test_invalid_audiences_are_422(world: dict[str, Any]) -> None:
    client = world["client"]
    for audience in ({}, {"all": False}, {"teams": []}, {"teams": ["Nowhere"]}):
        answer = await client.post(f"{API}/announcements", json={"body": "x", "audience": audience})
        assert answer.status_code == 422, audience
        assert "audience" in answer.text
    missing_body = await client.post(f"{API}/announcements", json={"audience": {"all": True}})
    assert missing_body.status_code == 422
    anonymous = await httpx.AsyncClient(
        transport=client._transport, base_url=str(client.base_url)
    ).post(f"{API}/announcements", json={"body": "x", "audience": {"all": True}})
    assert anonymous.status_code == 401


async def test_dry_run_writes_nothing(world: dict[str, Any]) -> None:
    client, ctx = world["client"], world["ctx"]
    body = "Ünïcode rally at noon"  # UCS-2: 70 characters a segment
    answer = await client.post(
        f"{API}/announcements?dry_run=true",
        json={"body": body, "audience": {"all": True}},
        headers={"Idempotency-Key": "dry"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "dry_run": True,
        "recipients": 5,
        "by_channel": {"sms": 2, "telegram": 1},
        "skipped": 1,
        "unreachable": 1,
        "sms_segments": {"per_message": 1, "total": 2},
        "longest_variant": body,
    }
    assert await count(ctx, Announcement) == 0 and await count(ctx, Message) == 0
    # The key was not used up by the dry run.
    real = await client.post(
        f"{API}/announcements",
        json={"body": body, "audience": {"all": True}},
        headers={"Idempotency-Key": "dry"},
    )
    assert real.status_code == 202


async def test_audience_filters_and_channel_restriction(world: dict[str, Any]) -> None:
    client, ctx, ids = world["client"], world["ctx"], world["ids"]
    by_tag = await client.post(
        f"{API}/announcements", json={"body": "x", "audience": {"tags": ["driver"]}}
    )
    assert {m.supporter_id for m in await messages_of(ctx, by_tag.json()["id"])} == {
        ids["sms"],
        ids["south"],
    }
    by_language = await client.post(
        f"{API}/announcements", json={"body": "x", "audience": {"language": "es"}}
    )
    assert [m.supporter_id for m in await messages_of(ctx, by_language.json()["id"])] == [
        ids["telegram"]
    ]
    sms_only = await client.post(
        f"{API}/announcements",
        json={"body": "x", "audience": {"teams": ["North"], "channels": ["sms"]}},
    )
    sent = {m.supporter_id: m.channel for m in await messages_of(ctx, sms_only.json()["id"])}
    # The member with telegram and sms gets sms; the email-only member is not in it.
    assert sent == {ids["sms"]: "sms", ids["telegram"]: "sms", ids["opted_out"]: None}


async def test_send_at_sets_when_the_outbox_may_send(
    world: dict[str, Any], clock: FakeClock
) -> None:
    client, ctx = world["client"], world["ctx"]
    later = clock() + timedelta(hours=5)
    answer = await client.post(
        f"{API}/announcements",
        json={"body": "x", "audience": {"teams": ["South"]}, "send_at": later.isoformat()},
    )
    assert answer.status_code == 202
    assert answer.json()["send_at"].startswith(later.isoformat()[:19])
    (item,) = (await outbox_by_message(ctx)).values()
    assert item.due_at == later


async def test_list_pages_newest_first(world: dict[str, Any]) -> None:
    client = world["client"]
    made = [
        (
            await client.post(
                f"{API}/announcements", json={"body": f"n{i}", "audience": {"teams": ["South"]}}
            )
        ).json()["id"]
        for i in range(3)
    ]
    first = (await client.get(f"{API}/announcements?limit=2")).json()
    assert [a["id"] for a in first["items"]] == made[::-1][:2]
    rest = (await client.get(f"{API}/announcements?limit=2&cursor={first['next_cursor']}")).json()
    assert [a["id"] for a in rest["items"]] == made[:1] and rest["next_cursor"] is None
