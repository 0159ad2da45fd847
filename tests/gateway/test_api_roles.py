"""Who may do what: 401 without a key, 403 for the wrong role, team leads confined to
their team (404 for supporters outside it, 403 for acting outside it)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from tests.conftest import bearer, new_key

API = "/api/v1"
MakeClient = Callable[..., Awaitable[httpx.AsyncClient]]


@pytest.fixture
async def world(make_client: MakeClient) -> dict[str, Any]:
    """Two teams, a supporter in each, and keys for every role."""
    admin = await make_client()
    ctx = admin.ctx  # type: ignore[attr-defined]
    admin.headers.update(bearer(await new_key(ctx)))
    north = (await admin.post(f"{API}/teams", json={"name": "North"})).json()
    south = (await admin.post(f"{API}/teams", json={"name": "South"})).json()
    ours = await admin.post(
        f"{API}/supporters",
        json={
            "name": "Ours",
            "teams": ["North"],
            "addresses": [{"channel": "email", "address": "ours@example.org"}],
        },
    )
    theirs = await admin.post(
        f"{API}/supporters",
        json={
            "name": "Theirs",
            "teams": ["South"],
            "addresses": [{"channel": "email", "address": "theirs@example.org"}],
        },
    )
    return {
        "client": admin,
        "north": north,
        "south": south,
        "ours": ours.json(),
        "theirs": theirs.json(),
        "lead": bearer(await new_key(ctx, "team_lead", north["id"])),
        "coordinator": bearer(await new_key(ctx, "coordinator")),
    }


async def test_missing_or_bad_key_is_401(make_client: MakeClient) -> None:
    client = await make_client()
    for method, path in [
        ("GET", "/supporters"),
        ("POST", "/supporters"),
        ("GET", "/teams"),
        ("GET", "/conversations"),
        ("GET", "/messages/1"),
    ]:
        response = await client.request(method, API + path)
        assert response.status_code == 401, path
        bad = await client.request(method, API + path, headers=bearer("rp_nope"))
        assert bad.status_code == 401, path


async def test_team_lead_sees_only_their_team(world: dict[str, Any]) -> None:
    client: httpx.AsyncClient = world["client"]
    lead = world["lead"]
    listed = await client.get(f"{API}/supporters", headers=lead)
    assert [s["id"] for s in listed.json()["items"]] == [world["ours"]["id"]]
    south_filter = await client.get(f"{API}/supporters", params={"team": "South"}, headers=lead)
    assert south_filter.json()["items"] == []
    assert (await client.get(f"{API}/supporters/{world['ours']['id']}", headers=lead)).is_success
    theirs = world["theirs"]["id"]
    assert (await client.get(f"{API}/supporters/{theirs}", headers=lead)).status_code == 404
    assert (
        await client.patch(f"{API}/supporters/{theirs}", json={"name": "x"}, headers=lead)
    ).status_code == 404
    assert (await client.delete(f"{API}/supporters/{theirs}", headers=lead)).status_code == 404
    assert (
        await client.post(f"{API}/supporters/{theirs}/messages", json={"body": "hi"}, headers=lead)
    ).status_code == 404
    teams = await client.get(f"{API}/teams", headers=lead)
    assert [t["name"] for t in teams.json()["items"]] == ["North"]
    assert (await client.get(f"{API}/teams/South", headers=lead)).status_code == 404
    assert (await client.get(f"{API}/teams/North", headers=lead)).json()["members"] == 1
    export = await client.get(f"{API}/supporters/export", headers=lead)
    assert "ours@example.org" in export.text and "theirs@example.org" not in export.text
    # The admin still sees both.
    everyone = await client.get(f"{API}/supporters")
    assert len(everyone.json()["items"]) == 2


async def test_team_lead_creates_into_their_own_team_only(world: dict[str, Any]) -> None:
    client: httpx.AsyncClient = world["client"]
    lead = world["lead"]
    created = await client.post(f"{API}/supporters", json={"name": "New"}, headers=lead)
    assert created.status_code == 201
    assert created.json()["teams"] == [{"id": world["north"]["id"], "name": "North"}]
    outside = await client.post(
        f"{API}/supporters", json={"name": "Sneaky", "teams": ["South"]}, headers=lead
    )
    assert outside.status_code == 403
    moved = await client.patch(
        f"{API}/supporters/{world['ours']['id']}", json={"teams": ["South"]}, headers=lead
    )
    assert moved.status_code == 403
    listed = await client.get(f"{API}/supporters", params={"q": "Sneaky"})
    assert listed.json()["items"] == []


async def test_roles_forbid_team_management_to_leads(world: dict[str, Any]) -> None:
    client: httpx.AsyncClient = world["client"]
    denied = await client.post(f"{API}/teams", json={"name": "Mine"}, headers=world["lead"])
    assert denied.status_code == 403
    patch = await client.patch(
        f"{API}/teams/North", json={"description": "x"}, headers=world["lead"]
    )
    assert patch.status_code == 403
    allowed = await client.post(f"{API}/teams", json={"name": "East"}, headers=world["coordinator"])
    assert allowed.status_code == 201
    # A coordinator sees every supporter.
    listed = await client.get(f"{API}/supporters", headers=world["coordinator"])
    assert len(listed.json()["items"]) == 2


async def test_teams_by_id_or_name_and_unique(world: dict[str, Any]) -> None:
    client: httpx.AsyncClient = world["client"]
    north = world["north"]
    assert (await client.post(f"{API}/teams", json={"name": "North"})).status_code == 409
    assert (await client.post(f"{API}/teams", json={"name": "123"})).status_code == 422
    by_id = await client.get(f"{API}/teams/{north['id']}")
    by_name = await client.get(f"{API}/teams/North")
    assert by_id.json() == by_name.json()
    assert by_id.json()["name"] == "North"
    renamed = await client.patch(
        f"{API}/teams/{north['id']}", json={"name": "Northwest", "welcome_text": "Karibu"}
    )
    assert renamed.status_code == 200
    assert renamed.json()["welcome_text"] == "Karibu"
    assert (await client.patch(f"{API}/teams/Northwest", json={"name": "South"})).status_code == 409
    assert (await client.get(f"{API}/teams/North")).status_code == 404
    listed = await client.get(f"{API}/teams")
    assert [t["name"] for t in listed.json()["items"]] == ["Northwest", "South"]
