"""DELETE /api/v1/teams/{id or name}: members stay, check-ins go, the team's lead keys stop
working (never widening), announcement history stays; refused while one is still going out."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import text, update
from sqlmodel import SQLModel, col, select

from gateway.api.announcement_create import AudienceIn, resolve_audience
from gateway.auth import Principal
from routing.context import AppContext
from routing.organizing.checkins import run_due_checkins
from routing.outbound.fanout import fan_out
from routing.people.team_delete import HANDLED_REFERENCES, TeamGone, delete_team
from storage.models import Announcement, ApiKey
from tests.conftest import PG_URL, FakeClock, bearer, new_key
from tests.routing.fake_adapter import until
from tests.routing.fake_channel import (
    ADDRESSES,
    FakeChannel,
    outbound,
    say,
    supporter_by_address,
)

API = "/api/v1"
TIMEOUT = 10
MakeClient = Callable[..., Awaitable[httpx.AsyncClient]]


async def organizer(make_client: MakeClient) -> httpx.AsyncClient:
    """An admin client with every channel configured, teams North and South, and three
    supporters: Ada in North, Bea in North and South, Cleo in South."""
    client = await make_client()
    ctx: AppContext = client.ctx  # type: ignore[attr-defined]
    ctx.registry.add(FakeChannel())
    client.headers.update(bearer(await new_key(ctx)))
    for name in ("North", "South"):
        assert (await client.post(f"{API}/teams", json={"name": name})).status_code == 201
    for i, (name, teams) in enumerate([("Ada", ["North"]), ("Bea", ["North", "South"])]):
        await supporter(client, name, teams, f"70{i}")
    await supporter(client, "Cleo", ["South"], "709")
    return client


async def supporter(client: httpx.AsyncClient, name: str, teams: list[str], chat: str) -> None:
    body = {"name": name, "teams": teams, "addresses": [{"channel": "telegram", "address": chat}]}
    assert (await client.post(f"{API}/supporters", json=body)).status_code == 201


async def team_id(client: httpx.AsyncClient, name: str) -> int:
    return int((await client.get(f"{API}/teams/{name}")).json()["id"])


async def teams_of(client: httpx.AsyncClient) -> dict[str, list[str]]:
    items = (await client.get(f"{API}/supporters")).json()["items"]
    return {s["name"]: [t["name"] for t in s["teams"]] for s in items}


async def test_a_deleted_team_keeps_members_and_history_and_locks_out_its_lead(
    make_client: MakeClient, clock: FakeClock
) -> None:
    client = await organizer(make_client)
    ctx: AppContext = client.ctx  # type: ignore[attr-defined]
    north = await team_id(client, "North")
    checkin = await client.post(
        f"{API}/teams/North/checkins",
        json={"weekday": 2, "local_time": "18:00", "prompt": "How did your week go?"},
    )
    assert checkin.status_code == 201
    sent = await client.post(
        f"{API}/announcements", json={"body": "Rally at noon", "audience": {"teams": ["North"]}}
    )
    assert sent.status_code == 202 and sent.json()["state"] == "fanned_out"
    before = (await client.get(f"{API}/announcements/{sent.json()['id']}")).json()
    lead = bearer(await new_key(ctx, "team_lead", north))
    other_lead = bearer(await new_key(ctx, "team_lead", await team_id(client, "South")))
    assert (await client.get(f"{API}/supporters", headers=lead)).status_code == 200
    coordinator = bearer(await new_key(ctx, "coordinator"))

    deleted_at = clock.now
    assert (await client.delete(f"{API}/teams/North", headers=coordinator)).status_code == 204

    assert (await client.get(f"{API}/teams/North")).status_code == 404
    assert [t["name"] for t in (await client.get(f"{API}/teams")).json()["items"]] == ["South"]
    assert await teams_of(client) == {"Ada": [], "Bea": ["South"], "Cleo": ["South"]}
    # The check-in is gone, and its time passing runs nothing.
    assert (await client.get(f"{API}/checkins/{checkin.json()['id']}")).status_code == 404
    assert (await client.get(f"{API}/checkins")).json()["items"] == []
    clock.advance(days=1)
    assert (await run_due_checkins(ctx)).runs == []
    # The announcement it was sent keeps its audience and report.
    after = await client.get(f"{API}/announcements/{sent.json()['id']}")
    assert after.status_code == 200 and after.json() == before
    assert after.json()["audience"]["teams"] == [north]
    # The lead's key reaches nothing at all (not everything); it stays on record, revoked.
    for method, path, body in [
        ("GET", "/teams", None),
        ("GET", "/supporters", None),
        ("GET", "/conversations", None),
        ("GET", "/announcements", None),
        ("GET", f"/announcements/{sent.json()['id']}", None),
        ("GET", "/checkins", None),
        ("POST", "/announcements", {"body": "hi", "audience": {"teams": [north]}}),
        (
            "POST",
            "/supporters",
            {"name": "Dee", "addresses": [{"channel": "sms", "address": "+14155550177"}]},
        ),
    ]:
        answer = await client.request(method, f"{API}{path}", json=body, headers=lead)
        assert answer.status_code == 401, (method, path, answer.text)
    async with ctx.sessions() as session:
        leads = (await session.exec(select(ApiKey).where(ApiKey.role == "team_lead"))).all()
    assert sorted(((k.team_id or 0), k.revoked_at is None) for k in leads) == [
        (0, False),
        (await team_id(client, "South"), True),
    ]
    assert [k.revoked_at for k in leads if k.team_id is None] == [deleted_at]
    theirs = await client.get(f"{API}/supporters", headers=other_lead)
    assert sorted(s["name"] for s in theirs.json()["items"]) == ["Bea", "Cleo"]
    assert (await client.delete(f"{API}/teams/North")).status_code == 404


async def test_a_team_lead_key_left_without_a_team_is_refused(make_client: MakeClient) -> None:
    """However a lead's key lost its team, it must not read as a key for every team."""
    client = await organizer(make_client)
    ctx: AppContext = client.ctx  # type: ignore[attr-defined]
    lead = bearer(await new_key(ctx, "team_lead", await team_id(client, "North")))
    async with ctx.sessions() as session:
        leads = update(ApiKey).where(col(ApiKey.role) == "team_lead")
        await session.execute(leads.values(team_id=None))
        await session.commit()
    for path in ("/teams", "/supporters", "/announcements"):
        assert (await client.get(f"{API}{path}", headers=lead)).status_code == 401


async def test_only_admins_and_coordinators_delete_teams(make_client: MakeClient) -> None:
    client = await organizer(make_client)
    ctx: AppContext = client.ctx  # type: ignore[attr-defined]
    north = await team_id(client, "North")
    lead = bearer(await new_key(ctx, "team_lead", north))
    for ref in ("North", str(north), "South"):
        assert (await client.delete(f"{API}/teams/{ref}", headers=lead)).status_code == 403
    assert (await client.delete(f"{API}/teams/Nowhere")).status_code == 404
    assert (await client.delete(f"{API}/teams/{north + 100}")).status_code == 404
    assert (await client.delete(f"{API}/teams")).status_code == 405
    assert (await client.get(f"{API}/teams/North", headers=lead)).status_code == 200
    assert await teams_of(client) == {
        "Ada": ["North"],
        "Bea": ["North", "South"],
        "Cleo": ["South"],
    }
    assert (await client.delete(f"{API}/teams/{north}")).status_code == 204  # by id, as admin


async def test_a_team_with_an_announcement_still_going_out_is_kept(
    make_client: MakeClient, clock: FakeClock
) -> None:
    client = await organizer(make_client)
    ctx: AppContext = client.ctx  # type: ignore[attr-defined]
    north = await team_id(client, "North")
    later = await client.post(
        f"{API}/announcements",
        json={
            "body": "Rally tomorrow",
            "audience": {"teams": ["North", "South"]},
            "send_at": (clock.now + timedelta(hours=20)).isoformat(),
        },
    )
    assert later.status_code == 202 and later.json()["state"] == "fanned_out"
    async with ctx.sessions() as session:  # a fan-out a restart will resume
        interrupted = Announcement(
            body="Phone bank tonight",
            audience={"teams": [north]},
            team_scope_id=north,
            created_at=clock.now,
        )
        session.add(interrupted)
        await session.commit()
    refused = await client.delete(f"{API}/teams/North")
    assert refused.status_code == 409
    assert refused.json()["detail"] == (
        "announcements to this team are still going out: "
        f"{later.json()['id']}, {interrupted.id}; "
        "cancel them or wait until they are sent, then delete the team"
    )
    assert await teams_of(client) == {
        "Ada": ["North"],
        "Bea": ["North", "South"],
        "Cleo": ["South"],
    }
    assert (await client.get(f"{API}/teams/North")).status_code == 200

    assert interrupted.id is not None
    await fan_out(ctx, interrupted.id)
    clock.advance(hours=20)
    assert (await client.delete(f"{API}/teams/North")).status_code == 204
    report = (await client.get(f"{API}/announcements/{interrupted.id}")).json()
    assert (report["state"], report["recipients"]) == ("fanned_out", 2)


async def test_a_recruit_offered_a_deleted_team_is_asked_again(make_client: MakeClient) -> None:
    """The number stands for the deleted team even once a new team exists (its id is never
    handed out again), so the recruit is not put in a team they were never shown."""
    client = await make_client()
    ctx: AppContext = client.ctx  # type: ignore[attr-defined]
    ctx.registry.add(FakeChannel())
    client.headers.update(bearer(await new_key(ctx)))
    for name in ("Canvassing", "Phone bank"):
        await client.post(f"{API}/teams", json={"name": name})
    phone_bank = await team_id(client, "Phone bank")
    await say(ctx, "JOIN", "sms")
    await say(ctx, "Mary", "sms")
    assert (await client.delete(f"{API}/teams/Phone bank")).status_code == 204
    registration = (await client.post(f"{API}/teams", json={"name": "Registration"})).json()
    assert registration["id"] > phone_bank
    await say(ctx, "2", "sms")
    mary = await supporter_by_address(ctx, "sms", ADDRESSES["sms"])
    answer = (await client.get(f"{API}/supporters/{mary.id}")).json()
    assert answer["teams"] == []
    assert (await outbound(ctx))[-1].body == (
        "Sorry, that team is no longer available. Which team would you like to join? "
        "1) Canvassing 2) Registration. Reply with a number."
    )
    await say(ctx, "2", "sms")
    answer = (await client.get(f"{API}/supporters/{mary.id}")).json()
    assert [t["name"] for t in answer["teams"]] == ["Registration"]


async def lock_waiters(ctx: AppContext) -> int:
    """Sessions of this database waiting for a lock held by another (PostgreSQL)."""
    async with ctx.sessions() as session:
        found = await session.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
        return int(found.scalar_one())


async def waits_for_a_lock(ctx: AppContext) -> None:
    async def waiting() -> bool:
        return await lock_waiters(ctx) > 0

    await until(waiting)  # bounded (~10 s)


@pytest.mark.skipif(PG_URL is None, reason="RALLYPOINT_TEST_DATABASE_URL is not set")
async def test_an_announcement_resolved_during_the_delete_waits_and_finds_no_team(
    make_client: MakeClient,
) -> None:
    """The POST resolved "North" while the delete was uncommitted: it waits for the team's
    lock, then finds it gone (422, nothing written), instead of announcing to nobody."""
    client = await organizer(make_client)
    ctx: AppContext = client.ctx  # type: ignore[attr-defined]
    north = await team_id(client, "North")
    body = {"body": "Rally at noon", "audience": {"teams": ["North", "South"]}}
    async with ctx.sessions() as deleting:
        await delete_team(deleting, north, ctx.clock())
        post = asyncio.create_task(client.post(f"{API}/announcements", json=body))
        await waits_for_a_lock(ctx)
        assert not post.done()
        await deleting.commit()
    answer = await asyncio.wait_for(post, TIMEOUT)
    assert answer.status_code == 422, answer.text
    assert "no team 'North'" in answer.text
    assert (await client.get(f"{API}/announcements")).json()["items"] == []
    assert await outbound(ctx) == []


@pytest.mark.skipif(PG_URL is None, reason="RALLYPOINT_TEST_DATABASE_URL is not set")
async def test_a_delete_during_an_announcement_waits_and_is_refused(
    make_client: MakeClient,
) -> None:
    """An announcement being written holds the team: the delete waits for it, then sees it
    still going out (409) and keeps the team."""
    client = await organizer(make_client)
    ctx: AppContext = client.ctx  # type: ignore[attr-defined]
    admin = Principal(key_id=None, role="admin")
    async with ctx.sessions() as announcing:
        audience, scope = await resolve_audience(announcing, admin, AudienceIn(teams=["North"]))
        delete = asyncio.create_task(client.delete(f"{API}/teams/North"))
        await waits_for_a_lock(ctx)
        assert not delete.done()
        pending = Announcement(
            body="Phone bank tonight",
            audience=audience.as_dict(),
            team_scope_id=scope,
            created_at=ctx.clock(),
        )
        announcing.add(pending)
        await announcing.commit()
    answer = await asyncio.wait_for(delete, TIMEOUT)
    assert answer.status_code == 409, answer.text
    assert f"still going out: {pending.id};" in answer.json()["detail"]
    assert (await client.get(f"{API}/teams/North")).status_code == 200


async def test_a_team_deleted_meanwhile_is_gone_for_a_second_delete(
    make_client: MakeClient,
) -> None:
    client = await organizer(make_client)
    ctx: AppContext = client.ctx  # type: ignore[attr-defined]
    north = await team_id(client, "North")
    async with ctx.sessions() as session:
        await delete_team(session, north, ctx.clock())
        await session.commit()
        with pytest.raises(TeamGone):
            await delete_team(session, north, ctx.clock())


def test_every_reference_to_a_team_is_handled_by_the_delete() -> None:
    """A table added later that refers to teams must be taught to routing/people/team_delete.py
    first: deleting the team would otherwise cascade and silently lose its rows."""
    references = {
        (table.name, fk.parent.name)
        for table in SQLModel.metadata.sorted_tables
        for fk in table.foreign_keys
        if fk.column.table.name == "teams"
    }
    assert references == HANDLED_REFERENCES
