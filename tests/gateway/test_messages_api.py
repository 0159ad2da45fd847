"""GET /api/v1/messages/{id} by role: a team lead reads the messages (inbound and outbound)
of their own team's supporters only; any other message answers 404 exactly as an unknown id
does. Admins and coordinators read every message."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from channels.base import InboundMessage
from routing.inbound.store import ingest
from tests.conftest import bearer, new_key
from tests.routing.fake_adapter import FakeAdapter

API = "/api/v1"
MakeClient = Callable[..., Awaitable[httpx.AsyncClient]]


@pytest.fixture
async def world(make_client: MakeClient) -> dict[str, Any]:
    """Teams North and South; supporters in North, in South, in both, and in none; one
    inbound and one outbound message for each; keys for every role."""
    client = await make_client()
    ctx = client.ctx  # type: ignore[attr-defined]
    ctx.registry.add(FakeAdapter(channels=("email",), provider="recording"))
    client.headers.update(bearer(await new_key(ctx)))
    north = (await client.post(f"{API}/teams", json={"name": "North"})).json()
    south = (await client.post(f"{API}/teams", json={"name": "South"})).json()
    teams = {"north": ["North"], "south": ["South"], "both": ["North", "South"], "none": []}
    inbound: dict[str, int] = {}
    outbound: dict[str, int] = {}
    for who, member_of in teams.items():
        created = await client.post(
            f"{API}/supporters",
            json={
                "name": who.title(),
                "teams": member_of,
                "addresses": [{"channel": "email", "address": f"{who}@example.org"}],
            },
        )
        assert created.status_code == 201, created.text
        event = InboundMessage(
            channel="email",
            address=f"{who}@example.org",
            provider_message_id=f"<{who}@mail>",
            body=f"hello from {who}",
        )
        [inbound[who]] = (await ingest(ctx, [event])).stored
        sent = await client.post(
            f"{API}/supporters/{created.json()['id']}/messages",
            json={"body": f"hi {who}", "subject": "Hi"},
        )
        assert sent.status_code == 202, sent.text
        outbound[who] = sent.json()["id"]
    return {
        "client": client,
        "inbound": inbound,
        "outbound": outbound,
        "admin": {},  # the client's own admin key
        "coordinator": bearer(await new_key(ctx, "coordinator")),
        "north_lead": bearer(await new_key(ctx, "team_lead", north["id"])),
        "south_lead": bearer(await new_key(ctx, "team_lead", south["id"])),
    }


async def status_of(world: dict[str, Any], key: str, message_id: int) -> int:
    client: httpx.AsyncClient = world["client"]
    return (await client.get(f"{API}/messages/{message_id}", headers=world[key])).status_code


@pytest.mark.parametrize(
    ("key", "visible"),
    [
        ("north_lead", {"north", "both"}),
        ("south_lead", {"south", "both"}),
        ("coordinator", {"north", "south", "both", "none"}),
        ("admin", {"north", "south", "both", "none"}),
    ],
)
async def test_who_reads_which_message(world: dict[str, Any], key: str, visible: set[str]) -> None:
    for direction in ("inbound", "outbound"):
        for who, message_id in world[direction].items():
            expected = 200 if who in visible else 404
            assert await status_of(world, key, message_id) == expected, (direction, who)


async def test_team_lead_gets_the_message_inside_the_team(world: dict[str, Any]) -> None:
    client: httpx.AsyncClient = world["client"]
    answer = await client.get(
        f"{API}/messages/{world['inbound']['north']}", headers=world["north_lead"]
    )
    assert answer.status_code == 200
    assert (answer.json()["direction"], answer.json()["body"]) == ("inbound", "hello from north")
    sent = await client.get(
        f"{API}/messages/{world['outbound']['north']}", headers=world["north_lead"]
    )
    assert (sent.json()["direction"], sent.json()["body"]) == ("outbound", "hi north")


async def test_outside_the_team_is_indistinguishable_from_unknown(world: dict[str, Any]) -> None:
    client: httpx.AsyncClient = world["client"]
    lead = world["north_lead"]
    outside = await client.get(f"{API}/messages/{world['inbound']['south']}", headers=lead)
    unknown = await client.get(f"{API}/messages/999999", headers=lead)
    assert (outside.status_code, outside.json()) == (404, unknown.json())
    assert (unknown.status_code, unknown.json()["detail"]) == (404, "no such message")
