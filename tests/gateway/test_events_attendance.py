"""Attendance as activity: a supporter marked at an event is not due a check-in for
inactivity, their profile API lists the events they came to, and team stats give the
team's attendance rate."""

from __future__ import annotations

from typing import Any

from tests.conftest import FakeClock
from tests.e2e.harness import MakeClient, Org

SMS = "+14155550111"
SMS_2 = "+14155550112"


async def test_attendance_is_activity_and_shows_on_profile_and_team_stats(
    make_client: MakeClient, clock: FakeClock
) -> None:
    org = await Org.start(make_client, clock)
    team = await org.team("North")
    came: dict[str, Any] = await org.supporter(
        name="Sam", addresses=[{"channel": "sms", "address": SMS}], teams=["North"]
    )
    stayed: dict[str, Any] = await org.supporter(
        name="Nia", addresses=[{"channel": "sms", "address": SMS_2}], teams=["North"]
    )
    event = await org.api(
        "POST",
        "/events",
        201,
        json={
            "title": "Training",
            "kind": "training",
            "starts_at": "2026-03-20T18:00:00Z",
            "audience": {"teams": ["North"]},
        },
    )
    await org.dispatch()
    await org.sms(SMS, "1")
    await org.sms(SMS_2, "1")
    clock.advance(days=16, hours=3)  # 2026-03-20 18:00, the training
    await org.api("POST", f"/events/{event['id']}/attendance", json={"supporter_ids": [came["id"]]})
    clock.advance(days=20)  # both last wrote 36 days ago; one came 20 days ago
    due = await org.api("GET", "/checkins/due", params={"days": 30})
    assert [item["supporter_id"] for item in due["items"]] == [stayed["id"]]
    due = await org.api("GET", "/checkins/due", params={"days": 14})
    assert {item["supporter_id"] for item in due["items"]} == {came["id"], stayed["id"]}
    inactive = await org.api("GET", "/supporters", params={"inactive_days": 30})
    assert [s["id"] for s in inactive["items"]] == [stayed["id"]]

    profile = await org.api("GET", f"/supporters/{came['id']}/events")
    assert profile["attended"] == 1
    [item] = profile["items"]
    assert (item["title"], item["answer"], item["attended"]) == ("Training", "yes", True)
    assert (await org.api("GET", f"/supporters/{stayed['id']}/events"))["attended"] == 0

    stats = await org.api("GET", f"/teams/{team['id']}/stats")
    assert stats["events_said_yes_90d"] == 2 and stats["events_attended_90d"] == 1
    assert stats["attendance_rate_90d"] == 0.5
    detail = await org.api("GET", f"/events/{event['id']}")
    assert detail["attendance_rate"] == 0.5
