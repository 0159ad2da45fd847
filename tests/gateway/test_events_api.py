"""Events over HTTP end to end: invitations out through the provider fakes (Twilio SMS,
Telegram) in each supporter's timezone, numbered replies in as signed webhooks, counts,
RSVP list, attendance, follow-ups, PATCH and cancel notices, and bad input."""

from __future__ import annotations

from typing import Any

from gateway.users import create_user
from tests.conftest import FakeClock
from tests.console.test_console_http import PASSWORD, sign_in
from tests.e2e.harness import MakeClient, Org

SMS = "+14155550111"
SMS_2 = "+14155550112"
TG = 5550133
START = "2026-03-10T18:00:00+00:00"  # a Tuesday; the clock starts 2026-03-04 15:00 UTC


async def org_with_team(make_client: MakeClient, clock: FakeClock) -> tuple[Org, dict[str, Any]]:
    org = await Org.start(make_client, clock)
    await org.team("North")
    people = {
        "sms": await org.supporter(
            name="Sam",
            addresses=[{"channel": "sms", "address": SMS}],
            teams=["North"],
            timezone="America/New_York",
        ),
        "tg": await org.supporter(
            name="Tove",
            addresses=[{"channel": "telegram", "address": str(TG)}],
            teams=["North"],
            timezone="Europe/Stockholm",
        ),
    }
    return org, people


async def create(org: Org, expect: int = 201, **fields: Any) -> Any:
    body = {
        "title": "Weekly call",
        "starts_at": START,
        "location_url": "https://meet.example.org/weekly",
        "audience": {"teams": ["North"]},
        **fields,
    }
    return await org.api("POST", "/events", expect, json=body)


async def test_invitations_reach_each_channel_in_local_time(
    make_client: MakeClient, clock: FakeClock
) -> None:
    org, _ = await org_with_team(make_client, clock)
    event = await create(org)
    assert event["invited"] == 2 and event["counts"]["no_reply"] == 2
    await org.dispatch()
    [sms] = org.providers.sms_to(SMS)
    [tg] = org.providers.telegram_to(TG)
    assert sms == (
        "Weekly call\nTue 10 Mar 2026, 14:00 EDT\nhttps://meet.example.org/weekly\n"
        "1) Yes 2) No 3) Maybe\nReply with a number."
    )
    assert "Tue 10 Mar 2026, 19:00 CET" in tg and "Reply with a number." in tg


async def test_numbered_replies_are_rsvps_and_the_last_wins(
    make_client: MakeClient, clock: FakeClock
) -> None:
    org, people = await org_with_team(make_client, clock)
    event = await create(org)
    await org.dispatch()
    await org.sms(SMS, "1")
    await org.telegram(TG, "3")
    await org.dispatch()
    assert org.providers.sms_to(SMS)[-1] == "Thanks, you're in for Weekly call."
    assert org.providers.telegram_to(TG)[-1] == "Noted: maybe for Weekly call."
    await org.telegram(TG, "no")  # the option's word; the last answer wins
    detail = await org.api("GET", f"/events/{event['id']}")
    assert detail["counts"] == {
        "yes": 1,
        "no": 1,
        "maybe": 0,
        "waitlist": 0,
        "no_reply": 0,
        "attended": 0,
    }
    assert detail["by_channel"] == {"sms": {"yes": 1}, "telegram": {"no": 1}}
    page = await org.api("GET", f"/events/{event['id']}/rsvps?limit=1")
    assert len(page["items"]) == 1 and page["next_cursor"]
    rest = await org.api("GET", f"/events/{event['id']}/rsvps?cursor={page['next_cursor']}")
    answers = {r["supporter_id"]: r["answer"] for r in page["items"] + rest["items"]}
    assert answers == {people["sms"]["id"]: "yes", people["tg"]["id"]: "no"}
    assert rest["next_cursor"] is None


async def test_a_full_event_puts_yes_on_the_wait_list(
    make_client: MakeClient, clock: FakeClock
) -> None:
    org, _ = await org_with_team(make_client, clock)
    event = await create(org, capacity=1)
    await org.dispatch()
    await org.sms(SMS, "1")
    await org.telegram(TG, "Yes")
    await org.dispatch()
    assert "wait list" in org.providers.telegram_to(TG)[-1]
    counts = (await org.api("GET", f"/events/{event['id']}"))["counts"]
    assert counts["yes"] == 1 and counts["waitlist"] == 1


async def test_an_rsvp_after_the_start_or_cancel_changes_nothing(
    make_client: MakeClient, clock: FakeClock
) -> None:
    org, _ = await org_with_team(make_client, clock)
    event = await create(org)
    await org.dispatch()
    await org.sms(SMS, "1")
    cancelled = await org.api("POST", f"/events/{event['id']}/cancel")
    assert cancelled["cancelled_at"] and cancelled["notified"] == 1
    await org.dispatch()
    assert org.providers.sms_to(SMS)[-1].startswith("Cancelled: Weekly call")
    await org.telegram(TG, "1")
    await org.dispatch()
    assert org.providers.telegram_to(TG)[-1] == (
        "Weekly call was cancelled, so your answer was not recorded."
    )
    counts = (await org.api("GET", f"/events/{event['id']}"))["counts"]
    assert counts["yes"] == 1 and counts["no_reply"] == 1
    await org.api("POST", f"/events/{event['id']}/cancel", 409)

    other = await create(org, title="Training")
    await org.dispatch()
    clock.advance(days=7)  # it has started
    await org.sms(SMS, "2")
    await org.dispatch()
    assert org.providers.sms_to(SMS)[-1] == (
        "Training has already started, so your answer was not recorded."
    )
    assert (await org.api("GET", f"/events/{other['id']}"))["counts"]["no"] == 0


async def test_a_new_time_is_told_to_yes_and_maybe(
    make_client: MakeClient, clock: FakeClock
) -> None:
    org, _ = await org_with_team(make_client, clock)
    event = await create(org)
    await org.dispatch()
    await org.sms(SMS, "3")
    await org.telegram(TG, "2")
    await org.dispatch()
    before = len(org.providers.telegram_to(TG))
    changed = await org.api(
        "PATCH", f"/events/{event['id']}", json={"starts_at": "2026-03-10T19:00:00+00:00"}
    )
    assert changed["notified"] == 1 and changed["starts_at"].startswith("2026-03-10T19:00")
    await org.dispatch()
    assert org.providers.sms_to(SMS)[-1].startswith("Update: Weekly call\nTue 10 Mar 2026, 15:00")
    assert len(org.providers.telegram_to(TG)) == before  # said no: not told
    same = await org.api("PATCH", f"/events/{event['id']}", json={"title": "Weekly call!"})
    assert same["notified"] == 0


async def test_attendance_and_follow_ups(make_client: MakeClient, clock: FakeClock) -> None:
    org, people = await org_with_team(make_client, clock)
    event = await create(org)
    await org.dispatch()
    await org.sms(SMS, "1")
    await org.telegram(TG, "1")
    clock.advance(days=6, hours=3)  # during the call
    marked = await org.api(
        "POST", f"/events/{event['id']}/attendance", json={"supporter_ids": [people["tg"]["id"]]}
    )
    assert marked["marked"] == 1
    detail = await org.api("GET", f"/events/{event['id']}")
    assert detail["counts"]["attended"] == 1 and detail["attendance_rate"] == 0.5
    sent = await org.api(
        "POST",
        f"/events/{event['id']}/follow-up",
        202,
        json={"body": "We missed you! Next one is Tuesday.", "to": "no_show"},
    )
    assert sent == {"recipients": 1}
    await org.dispatch()
    assert org.providers.sms_to(SMS)[-1] == "We missed you! Next one is Tuesday."
    await org.api(
        "POST",
        f"/events/{event['id']}/attendance",
        422,
        json={"supporter_ids": [999_999]},
    )


async def test_bad_input_names_the_field_and_creates_nothing(
    make_client: MakeClient, clock: FakeClock
) -> None:
    org, _ = await org_with_team(make_client, clock)
    for fields, field in (
        ({"starts_at": "2026-03-10T18:00:00"}, "starts_at"),
        ({"recurrence": "FREQ=SOMETIMES"}, "recurrence"),
        ({"recurrence": "FREQ=WEEKLY;UNTIL=20260401"}, "recurrence"),
        ({"capacity": -1}, "capacity"),
    ):
        problem = await create(org, 422, **fields)
        assert [e["field"] for e in problem["errors"]] == [f"body.{field}"], problem
    assert (await org.api("GET", "/events"))["items"] == []
    assert org.providers.sms_to(SMS) == []


async def test_recurring_event_has_occurrences_and_an_ics(
    make_client: MakeClient, clock: FakeClock
) -> None:
    org, _ = await org_with_team(make_client, clock)
    event = await create(org, recurrence="RRULE:FREQ=WEEKLY;COUNT=4", audience=None)
    detail = await org.api("GET", f"/events/{event['id']}")
    assert [o["starts_at"][:10] for o in detail["occurrences"]] == [
        "2026-03-10",
        "2026-03-17",
        "2026-03-24",
        "2026-03-31",
    ]
    answer = await org.client.get(f"/api/v1/events/{event['id']}.ics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/calendar")
    text = answer.text
    assert text.startswith("BEGIN:VCALENDAR\r\n") and text.endswith("END:VCALENDAR\r\n")
    for line in (
        "DTSTART:20260310T180000Z",
        "DTEND:20260310T190000Z",
        "RRULE:FREQ=WEEKLY;COUNT=4",
        "SUMMARY:Weekly call",
        "URL:https://meet.example.org/weekly",
    ):
        assert line + "\r\n" in text
    assert all(len(line.encode()) <= 75 for line in text.split("\r\n"))


async def test_team_leads_see_and_invite_their_team_only(
    make_client: MakeClient, clock: FakeClock
) -> None:
    org, _ = await org_with_team(make_client, clock)
    south = await org.team("South")
    north_id = (await org.api("GET", "/teams"))["items"][0]["id"]
    theirs = await create(org, audience={"teams": ["South"]})
    lead = await org.key_for("team_lead", north_id)
    await org.api(
        "POST",
        "/events",
        403,
        headers=lead,
        json={
            "title": "x",
            "starts_at": START,
            "audience": {"teams": [south["id"]]},
        },
    )
    ours = await org.api(
        "POST",
        "/events",
        201,
        headers=lead,
        json={
            "title": "North call",
            "starts_at": START,
            "audience": {"teams": ["North"]},
        },
    )
    listed = await org.api("GET", "/events", headers=lead)
    assert [e["id"] for e in listed["items"]] == [ours["id"]]
    await org.api("GET", f"/events/{theirs['id']}", 404, headers=lead)
    await org.api("POST", f"/events/{theirs['id']}/cancel", 404, headers=lead)


async def test_a_team_lead_sees_only_their_teams_events_on_a_profile(
    make_client: MakeClient, clock: FakeClock
) -> None:
    """A supporter of two teams, invited to an org-wide event, to the other team's and to
    the lead's: the lead's profile views (API and console page) show their team's only."""
    org = await Org.start(make_client, clock)
    north = await org.team("North")
    await org.team("South")
    sam = await org.supporter(
        name="Sam", addresses=[{"channel": "sms", "address": SMS}], teams=["North", "South"]
    )
    everyone = await create(org, title="Org gala", audience={"teams": ["North", "South"]})
    south_only = await create(org, title="South rally", audience={"teams": ["South"]})
    await create(org, title="North call")
    north_lead = await org.key_for("team_lead", north["id"])
    for hidden in (everyone, south_only):  # what the lead may not see of events
        await org.api("GET", f"/events/{hidden['id']}", 404, headers=north_lead)

    path = f"/supporters/{sam['id']}/events"
    seen = await org.api("GET", path, headers=north_lead)
    assert [e["title"] for e in seen["items"]] == ["North call"]
    every = {e["title"] for e in (await org.api("GET", path))["items"]}
    assert every == {"Org gala", "South rally", "North call"}

    async with org.ctx.sessions() as session:
        await create_user(
            session,
            email="lead@example.org",
            password=PASSWORD,
            role="team_lead",
            team_id=north["id"],
            now=org.ctx.clock(),
        )
    assert (await sign_in(org.client, "lead@example.org")).status_code == 303
    page = await org.client.get(f"/console/supporters/{sam['id']}")
    assert page.status_code == 200 and "North call" in page.text
    assert "South rally" not in page.text and "Org gala" not in page.text
