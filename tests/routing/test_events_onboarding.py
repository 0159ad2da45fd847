"""Onboarding offers the next intake calls once a recruit has given a name (and picked a
team); their numbered reply is an RSVP yes to that call, in the same flow. Everything goes
in as signed Twilio webhooks and comes out at the Twilio fake."""

from __future__ import annotations

from typing import Any

from tests.conftest import FakeClock
from tests.e2e.harness import MakeClient, Org

RECRUIT = "+14155550177"


async def intake(org: Org, title: str, starts_at: str, **fields: Any) -> Any:
    body = {"title": title, "kind": "intake", "starts_at": starts_at, **fields}
    return await org.api("POST", "/events", 201, json=body)


async def test_a_recruit_picks_an_intake_call_by_number(
    make_client: MakeClient, clock: FakeClock
) -> None:
    org = await Org.start(make_client, clock, onboarding_intake_offers=2)
    await org.team("Canvassing")
    await intake(org, "Intake call A", "2026-03-05T18:00:00Z")
    second = await intake(org, "Intake call B", "2026-03-06T18:00:00Z")
    await intake(org, "Intake call C", "2026-03-07T18:00:00Z")  # beyond the 2 offered
    await intake(org, "Old intake", "2026-03-01T18:00:00Z")  # over
    cancelled = await intake(org, "Cancelled intake", "2026-03-05T12:00:00Z")
    await org.api("POST", f"/events/{cancelled['id']}/cancel")
    await org.api(
        "POST", "/events", 201, json={"title": "Training", "starts_at": "2026-03-05T10:00:00Z"}
    )

    await org.sms(RECRUIT, "JOIN")
    await org.sms(RECRUIT, "Rosa Parks")
    await org.sms(RECRUIT, "1")  # the team
    await org.dispatch()
    welcome = org.providers.sms_to(RECRUIT)[-1]
    assert welcome.endswith(
        "Join an intake call?\n"
        "1) Intake call A, Thu 5 Mar 2026, 18:00 UTC\n"
        "2) Intake call B, Fri 6 Mar 2026, 18:00 UTC\n"
        "Reply with a number."
    )
    await org.sms(RECRUIT, "2")
    await org.dispatch()
    assert org.providers.sms_to(RECRUIT)[-1] == "Thanks, you're in for Intake call B."
    detail = await org.api("GET", f"/events/{second['id']}")
    assert detail["counts"]["yes"] == 1 and detail["by_channel"] == {"sms": {"yes": 1}}

    await org.sms(RECRUIT, "3")  # onboarding is over: an ordinary message now
    await org.dispatch()
    assert org.providers.sms_to(RECRUIT)[-1] == "Thanks, you're in for Intake call B."


async def test_without_intake_calls_onboarding_ends_as_before(
    make_client: MakeClient, clock: FakeClock
) -> None:
    org = await Org.start(make_client, clock)
    await org.sms(RECRUIT, "JOIN")
    await org.sms(RECRUIT, "Rosa")
    await org.dispatch()
    assert "intake" not in org.providers.sms_to(RECRUIT)[-1]
