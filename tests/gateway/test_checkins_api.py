"""Check-in CRUD, the inactivity list, and a supporter's consent history over the REST API."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import httpx

from routing.context import AppContext
from storage.models import Supporter, SupporterAddress, Team, TeamMembership
from tests.conftest import FakeClock, bearer, new_key
from tests.routing.fake_channel import FakeChannel, say

MakeClient = Callable[..., Awaitable[httpx.AsyncClient]]
CHECKIN = {"weekday": 2, "local_time": "18:00", "prompt": "How did your week go?"}


async def seed(ctx: AppContext) -> tuple[Team, Team, list[int]]:
    """Two teams; Ada and Bea in Canvassing, Cleo in Phone bank."""
    now = ctx.clock()
    async with ctx.sessions() as session:
        canvassing = Team(name="Canvassing", created_at=now)
        phones = Team(name="Phone bank", created_at=now)
        session.add_all([canvassing, phones])
        await session.flush()
        ids = []
        for i, (name, team) in enumerate(
            [("Ada", canvassing), ("Bea", canvassing), ("Cleo", phones)]
        ):
            supporter = Supporter(name=name, created_at=now, updated_at=now)
            session.add(supporter)
            await session.flush()
            assert supporter.id is not None and team.id is not None
            session.add(
                SupporterAddress(supporter_id=supporter.id, channel="telegram", address=f"80{i}")
            )
            session.add(TeamMembership(supporter_id=supporter.id, team_id=team.id))
            ids.append(supporter.id)
        await session.commit()
    return canvassing, phones, ids


async def test_create_list_get_delete(client: httpx.AsyncClient, clock: FakeClock) -> None:
    ctx: AppContext = client.ctx  # type: ignore[attr-defined]
    canvassing, _, _ = await seed(ctx)
    answer = await client.post(
        "/api/v1/teams/Canvassing/checkins",
        json={**CHECKIN, "inactive_days": 10, "nudge_text": "We miss you"},
    )
    assert answer.status_code == 201, answer.text
    created = answer.json()
    assert created["team_id"] == canvassing.id
    assert created["team"] == "Canvassing"
    assert (created["weekday"], created["local_time"], created["timezone"]) == (2, "18:00", "UTC")
    assert (created["inactive_days"], created["nudge_text"]) == (10, "We miss you")
    assert created["last_run_at"] is None
    # Created Wednesday 15:00 UTC: the next run is today at 18:00.
    assert datetime.fromisoformat(created["next_run_at"]) == datetime(2026, 3, 4, 18, tzinfo=UTC)

    by_id = await client.post(f"/api/v1/teams/{canvassing.id}/checkins", json=CHECKIN)
    assert by_id.status_code == 201
    listed = (await client.get("/api/v1/checkins")).json()["items"]
    assert [c["id"] for c in listed] == [created["id"], by_id.json()["id"]]
    assert (await client.get(f"/api/v1/checkins/{created['id']}")).json()["prompt"] == (
        "How did your week go?"
    )

    assert (await client.delete(f"/api/v1/checkins/{created['id']}")).status_code == 204
    assert (await client.get(f"/api/v1/checkins/{created['id']}")).status_code == 404
    assert (await client.delete(f"/api/v1/checkins/{created['id']}")).status_code == 404
    assert len((await client.get("/api/v1/checkins")).json()["items"]) == 1


async def test_validation_and_unknown_team(client: httpx.AsyncClient) -> None:
    await seed(client.ctx)  # type: ignore[attr-defined]
    for field, value in [("local_time", "25:00"), ("local_time", "6pm"), ("weekday", 7)]:
        answer = await client.post(
            "/api/v1/teams/Canvassing/checkins", json={**CHECKIN, field: value}
        )
        assert answer.status_code == 422
        assert field in answer.text
    missing = {k: v for k, v in CHECKIN.items() if k != "prompt"}
    answer = await client.post("/api/v1/teams/Canvassing/checkins", json=missing)
    assert answer.status_code == 422 and "prompt" in answer.text
    answer = await client.post("/api/v1/teams/Nope/checkins", json=CHECKIN)
    assert answer.status_code == 404
    assert (await client.get("/api/v1/checkins/due?team=Nope")).status_code == 422


async def test_auth_and_team_lead_scope(make_client: MakeClient) -> None:
    client = await make_client()
    ctx: AppContext = client.ctx  # type: ignore[attr-defined]
    canvassing, phones, _ = await seed(ctx)
    assert (await client.get("/api/v1/checkins")).status_code == 401
    admin = bearer(await new_key(ctx))
    lead = bearer(await new_key(ctx, "team_lead", canvassing.id))
    other = await client.post("/api/v1/teams/Phone bank/checkins", json=CHECKIN, headers=admin)
    assert other.status_code == 201

    own = await client.post("/api/v1/teams/Canvassing/checkins", json=CHECKIN, headers=lead)
    assert own.status_code == 201
    refused = await client.post("/api/v1/teams/Phone bank/checkins", json=CHECKIN, headers=lead)
    assert refused.status_code == 403
    listed = (await client.get("/api/v1/checkins", headers=lead)).json()["items"]
    assert [c["id"] for c in listed] == [own.json()["id"]]
    other_id = other.json()["id"]
    assert (await client.get(f"/api/v1/checkins/{other_id}", headers=lead)).status_code == 404
    assert (await client.delete(f"/api/v1/checkins/{other_id}", headers=lead)).status_code == 404
    assert (await client.get(f"/api/v1/checkins/{other_id}", headers=admin)).status_code == 200
    assert (
        await client.get("/api/v1/checkins/due?team=Phone bank", headers=lead)
    ).status_code == 403


async def test_due_lists_the_quiet_supporters(make_client: MakeClient, clock: FakeClock) -> None:
    client = await make_client()
    ctx: AppContext = client.ctx  # type: ignore[attr-defined]
    ctx.registry.add(FakeChannel())
    canvassing, _, (ada, bea, cleo) = await seed(ctx)
    admin = bearer(await new_key(ctx))
    lead = bearer(await new_key(ctx, "team_lead", canvassing.id))
    clock.advance(days=2)
    await say(ctx, "hello", "telegram", "800")  # Ada writes on day 2
    clock.advance(days=13)  # day 15: Bea and Cleo quiet 15 days, Ada 13

    answer = (await client.get("/api/v1/checkins/due", headers=admin)).json()
    assert answer["days"] == 14
    assert [(i["supporter_id"], i["days_inactive"]) for i in answer["items"]] == [
        (bea, 15),
        (cleo, 15),
    ]
    item = answer["items"][0]
    assert (item["name"], item["team"], item["last_inbound_at"]) == ("Bea", "Canvassing", None)

    answer = (await client.get("/api/v1/checkins/due?days=7", headers=lead)).json()
    assert [(i["supporter_id"], i["days_inactive"]) for i in answer["items"]] == [
        (bea, 15),
        (ada, 13),
    ]
    assert answer["items"][1]["last_inbound_at"].startswith("2026-03-06T15:00")

    # The default follows the team's check-in setting.
    await client.post(
        "/api/v1/teams/Canvassing/checkins", json={**CHECKIN, "inactive_days": 10}, headers=admin
    )
    answer = (await client.get("/api/v1/checkins/due", headers=lead)).json()
    assert answer["days"] == 10
    assert [i["supporter_id"] for i in answer["items"]] == [bea, ada]


async def test_due_comes_a_page_at_a_time_quietest_first(
    make_client: MakeClient, clock: FakeClock
) -> None:
    """`limit` and `next_cursor` walk the whole list once, in the order one answer gives;
    a bad cursor is a 422 naming it."""
    client = await make_client()
    ctx: AppContext = client.ctx  # type: ignore[attr-defined]
    ctx.registry.add(FakeChannel())
    await seed(ctx)
    admin = bearer(await new_key(ctx))
    clock.advance(days=2)
    await say(ctx, "hello", "telegram", "800")
    clock.advance(days=13)
    whole = (await client.get("/api/v1/checkins/due?days=7", headers=admin)).json()
    assert len(whole["items"]) == 3 and whole["next_cursor"] is None
    seen: list[int] = []
    cursor = None
    for _ in range(4):
        params = {"days": "7", "limit": "2", **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/api/v1/checkins/due", params=params, headers=admin)).json()
        seen += [i["supporter_id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [i["supporter_id"] for i in whole["items"]]
    bad = await client.get("/api/v1/checkins/due?cursor=nonsense", headers=admin)
    assert bad.status_code == 422 and "cursor" in bad.text


async def test_consent_history(make_client: MakeClient) -> None:
    client = await make_client(twilio_handles_opt_out=False)
    ctx: AppContext = client.ctx  # type: ignore[attr-defined]
    ctx.registry.add(FakeChannel())
    canvassing, _, (ada, _bea, cleo) = await seed(ctx)
    admin = bearer(await new_key(ctx))
    lead = bearer(await new_key(ctx, "team_lead", canvassing.id))
    stop_id = await say(ctx, "STOP", "telegram", "800")
    start_id = await say(ctx, "Start", "telegram", "800")

    answer = await client.get(f"/api/v1/supporters/{ada}/consent", headers=lead)
    assert answer.status_code == 200
    history = answer.json()
    assert history["opted_out"] is False
    assert [(e["action"], e["channel"], e["message_id"]) for e in history["items"]] == [
        ("opt_out", "telegram", stop_id),
        ("opt_in", "telegram", start_id),
    ]
    assert (await client.get(f"/api/v1/supporters/{cleo}/consent", headers=lead)).status_code == (
        404
    )
    assert (await client.get("/api/v1/supporters/9999/consent", headers=admin)).status_code == 404
