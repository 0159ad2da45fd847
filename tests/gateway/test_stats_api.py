"""GET /api/v1/teams/{id-or-name}/stats: activity by the injected clock, reach per channel,
one-on-ones in the last 30 days, team leads confined to their team."""

from __future__ import annotations

from datetime import timedelta

import httpx

from routing.context import AppContext
from routing.outbound.queue import queue_message
from storage.models import Supporter
from tests.conftest import FakeClock, bearer, new_key
from tests.gateway.seed import add_member, make_team
from tests.routing.fake_adapter import FakeAdapter

API = "/api/v1"


async def one_on_one(ctx: AppContext, supporter_id: int, kind: str = "one_on_one") -> None:
    async with ctx.sessions() as session:
        supporter = await session.get(Supporter, supporter_id)
        assert supporter is not None
        await queue_message(session, ctx, supporter, "How are you?", kind=kind)
        await session.commit()


async def test_team_stats(client: httpx.AsyncClient, clock: FakeClock) -> None:
    ctx = client.ctx  # type: ignore[attr-defined]
    ctx.registry.add(FakeAdapter(channels=("sms", "telegram")))
    north = await make_team(ctx, "North")
    south = await make_team(ctx, "South")
    now = clock()
    recent = await add_member(
        ctx,
        {"sms": "+14155550101", "telegram": "1"},
        teams=[north],
        last_inbound_at=now - timedelta(days=2),
    )
    month = await add_member(
        ctx, {"sms": "+14155550102"}, teams=[north], last_inbound_at=now - timedelta(days=10)
    )
    await add_member(
        ctx, {"email": "old@example.org"}, teams=[north], last_inbound_at=now - timedelta(days=40)
    )
    await add_member(ctx, {"sms": "+14155550104"}, teams=[north], opted_out=True)
    outsider = await add_member(
        ctx, {"sms": "+14155550105"}, teams=[south], last_inbound_at=now - timedelta(days=1)
    )
    clock.advance(days=-40)
    await one_on_one(ctx, recent)  # 40 days ago: too old
    clock.set(now - timedelta(days=3))
    await one_on_one(ctx, recent)
    await one_on_one(ctx, month)
    await one_on_one(ctx, month, kind="announcement")  # not a one-on-one
    await one_on_one(ctx, outsider)  # not in the team
    clock.set(now)

    for ref in (str(north), "North"):
        answer = await client.get(f"{API}/teams/{ref}/stats")
        assert answer.status_code == 200, answer.text
        data = answer.json()
        assert data == {
            "team_id": north,
            "team": "North",
            "as_of": data["as_of"],
            "members": 4,
            "active_7d": 1,
            "active_30d": 2,
            "opted_out": 1,
            "by_channel": {"sms": 3, "telegram": 1, "email": 1},
            "one_on_ones_30d": 2,
            "events_said_yes_90d": 0,
            "events_attended_90d": 0,
            "attendance_rate_90d": None,
        }
    # The clock moves on: the 2-day-old activity is now 9 days old.
    clock.advance(days=7)
    data = (await client.get(f"{API}/teams/North/stats")).json()
    assert (data["active_7d"], data["active_30d"]) == (0, 2)

    lead = bearer(await new_key(ctx, "team_lead", south))
    assert (await client.get(f"{API}/teams/North/stats", headers=lead)).status_code == 404
    own = await client.get(f"{API}/teams/South/stats", headers=lead)
    assert own.status_code == 200 and own.json()["members"] == 1
    assert (await client.get(f"{API}/teams/Nowhere/stats")).status_code == 404
