"""Two teams abroad, one check-in each at Monday 18:00 in the team's own timezone: each
prompt reaches its team at that team's 18:00, on the injected clock."""

from __future__ import annotations

from datetime import UTC, datetime

from routing.organizing.checkins import run_due_checkins
from tests.conftest import FakeClock
from tests.e2e.harness import MakeClient, Org

NAIROBI_PHONE = "+254712345602"
MANILA_CHAT = 5550166
PROMPT = "Monday check-in: how did the week go?"


async def test_teams_in_two_timezones_are_prompted_at_their_own_time(
    make_client: MakeClient, clock: FakeClock
) -> None:
    # Wednesday 2026-03-04 15:00 UTC; the organizers sit in New York.
    org = await Org.start(make_client, clock, default_timezone="America/New_York")
    for team, zone, address in [
        ("Nairobi", "Africa/Nairobi", {"channel": "sms", "address": NAIROBI_PHONE}),
        ("Manila", "Asia/Manila", {"channel": "telegram", "address": str(MANILA_CHAT)}),
    ]:
        await org.team(team)
        await org.supporter(name=f"{team} member", addresses=[address], teams=[team], timezone=zone)
    checkins = {}
    for team, zone in [("Nairobi", "Africa/Nairobi"), ("Manila", "Asia/Manila")]:
        body = {"weekday": 0, "local_time": "18:00", "prompt": PROMPT, "timezone": zone}
        checkins[team] = await org.api("POST", f"/teams/{team}/checkins", 201, json=body)
    nairobi, manila = checkins["Nairobi"]["id"], checkins["Manila"]["id"]
    # Monday 9 March, 18:00 local: 15:00 UTC in Nairobi (UTC+3), 10:00 UTC in Manila (UTC+8).
    assert checkins["Nairobi"]["next_run_at"].startswith("2026-03-09T15:00:00")
    assert checkins["Manila"]["next_run_at"].startswith("2026-03-09T10:00:00")

    async def run_at(hour: int, minute: int = 0) -> list[int]:
        clock.set(datetime(2026, 3, 9, hour, minute, tzinfo=UTC))
        runs = (await run_due_checkins(org.ctx)).runs
        await org.dispatch()
        return [run.checkin_id for run in runs]

    assert await run_at(9, 59) == []
    assert await run_at(10) == [manila]  # Manila's 18:00; Nairobi's is five hours off
    assert org.providers.telegram_to(MANILA_CHAT) == [PROMPT]
    assert org.providers.sms_to(NAIROBI_PHONE) == []
    assert await run_at(14, 59) == []
    assert await run_at(15) == [nairobi]
    assert org.providers.sms_to(NAIROBI_PHONE) == [PROMPT]
    assert await run_at(22) == []  # 18:00 in New York, the org's timezone: nothing
    assert org.providers.telegram_to(MANILA_CHAT) == [PROMPT]
    assert org.providers.sms_to(NAIROBI_PHONE) == [PROMPT]
    listed = {c["id"]: c for c in (await org.api("GET", "/checkins"))["items"]}
    assert listed[manila]["last_run_at"].startswith("2026-03-09T10:00:00")
    assert listed[nairobi]["next_run_at"].startswith("2026-03-16T15:00:00")
