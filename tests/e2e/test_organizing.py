"""Organizing end to end (issue 5): recruits join by text, teams hear announcements on
their own channels, STOP/START, polls, idempotent replays, team-lead scope. Everything
goes in as signed provider webhooks or REST calls and comes out at the provider fakes."""

from __future__ import annotations

from typing import Any

from tests.conftest import FakeClock
from tests.e2e.harness import MakeClient, Org

SMS_PHONE = "+14155550111"
WA_PHONE = "+14155550122"
TG_CHAT = 5550133


async def three_members(org: Org, team: str) -> dict[str, dict[str, Any]]:
    """Members of `team` on SMS, WhatsApp (window open: they wrote in) and Telegram."""
    members = {
        "sms": await org.supporter(
            name="Sam Sms",
            addresses=[{"channel": "sms", "address": SMS_PHONE}],
            teams=[team],
        ),
        "whatsapp": await org.supporter(
            name="Wa Wanjiku",
            addresses=[{"channel": "whatsapp", "address": WA_PHONE}],
            preferred_channels=["whatsapp"],
            teams=[team],
        ),
        "telegram": await org.supporter(
            name="Tele Tom",
            addresses=[{"channel": "telegram", "address": str(TG_CHAT)}],
            teams=[team],
        ),
    }
    await org.twilio_whatsapp(WA_PHONE, "Hi, count me in")  # opens the 24 h window
    return members


def received(org: Org) -> dict[str, list[str]]:
    p = org.providers
    return {
        "sms": p.sms_to(SMS_PHONE),
        "whatsapp": p.twilio_whatsapp_to(WA_PHONE),
        "telegram": p.telegram_to(TG_CHAT),
    }


async def test_recruit_joins_by_sms(make_client: MakeClient, clock: FakeClock) -> None:
    org = await Org.start(make_client, clock, org_name="Sunrise Hub")
    await org.team("Phone bank")
    canvass = await org.team(
        "Canvassing",
        welcome_text="Welcome to {team}, {name}!",
        orientation_call="Thursday 6pm, meet.example.org/canvass",
    )
    recruit = "+14155550177"

    await org.sms(recruit, "JOIN")
    await org.dispatch()
    await org.sms(recruit, "Wanjiru Kamau")
    await org.dispatch()
    await org.sms(recruit, "2")
    await org.dispatch()

    assert org.providers.sms_to(recruit) == [
        "Welcome to Sunrise Hub! What's your name?",
        "Which team would you like to join? 1) Phone bank 2) Canvassing. Reply with a number.",
        "Welcome to Canvassing, Wanjiru Kamau!\n"
        "Next orientation call: Thursday 6pm, meet.example.org/canvass",
    ]
    assert len(org.providers.twilio.sent) == 3  # nothing to anyone else, nothing twice
    [found] = (await org.api("GET", "/supporters", params={"q": "Wanjiru"}))["items"]
    supporter = await org.api("GET", f"/supporters/{found['id']}")
    assert supporter["name"] == "Wanjiru Kamau"
    assert [t["name"] for t in supporter["teams"]] == ["Canvassing"]
    assert [(a["channel"], a["address"]) for a in supporter["addresses"]] == [("sms", recruit)]
    members = await org.api("GET", "/supporters", params={"team": canvass["id"]})
    assert [s["id"] for s in members["items"]] == [found["id"]]


async def test_recruit_answers_the_list_they_were_shown_while_teams_change(
    make_client: MakeClient, clock: FakeClock
) -> None:
    org = await Org.start(make_client, clock)
    await org.team("Phone bank")
    canvass = await org.team("Canvassing", welcome_text="Welcome to {team}, {name}!")
    recruit = "+14155550178"
    await org.sms(recruit, "JOIN")
    await org.sms(recruit, "Wanjiru Kamau")
    await org.dispatch()

    clock.advance(hours=20)  # the recruit answers the next day; organizers were busy
    await org.team("Registration")
    await org.api("PATCH", f"/teams/{canvass['id']}", json={"name": "Door knocking"})
    await org.sms(recruit, "3")  # not on the list they were shown
    await org.dispatch()
    await org.sms(recruit, "2")
    await org.dispatch()

    assert org.providers.sms_to(recruit)[1:] == [
        "Which team would you like to join? 1) Phone bank 2) Canvassing. Reply with a number.",
        "Sorry, I didn't get that. Which team would you like to join? "
        "1) Phone bank 2) Door knocking 3) Registration. Reply with a number.",
        "Welcome to Door knocking, Wanjiru Kamau!",
    ]
    members = await org.api("GET", "/supporters", params={"team": canvass["id"]})
    assert [s["name"] for s in members["items"]] == ["Wanjiru Kamau"]


async def test_announcement_reaches_each_member_once(
    make_client: MakeClient, clock: FakeClock
) -> None:
    org = await Org.start(make_client, clock)
    await org.team("Canvassing")
    other = await org.team("Phone bank")
    await three_members(org, "Canvassing")
    outsider = await org.supporter(
        name="Not In Team",
        addresses=[{"channel": "sms", "address": "+14155550199"}],
        teams=[other["id"]],
    )

    created = await org.announce("Canvass Saturday 10am", {"teams": ["Canvassing"]})
    assert created["recipients"] == 3
    await org.dispatch()
    await org.dispatch()  # a second run finds nothing left to send

    assert received(org) == {
        "sms": ["Canvass Saturday 10am"],
        "whatsapp": ["Canvass Saturday 10am"],
        "telegram": ["Canvass Saturday 10am"],
    }
    assert len(org.providers.twilio.sent) == 2
    assert org.providers.sms_to(outsider["addresses"][0]["address"]) == []
    report = await org.api("GET", f"/announcements/{created['id']}")
    assert report["recipients"] == 3
    assert report["counts"] == {"sent": 3}
    assert report["by_channel"] == {
        "sms": {"sent": 1},
        "whatsapp": {"sent": 1},
        "telegram": {"sent": 1},
    }


async def test_stop_then_start_over_whatsapp(make_client: MakeClient, clock: FakeClock) -> None:
    org = await Org.start(make_client, clock)
    await org.team("Canvassing")
    members = await three_members(org, "Canvassing")
    settings = org.ctx.settings

    await org.twilio_whatsapp(WA_PHONE, "STOP")
    await org.dispatch()
    assert org.providers.twilio_whatsapp_to(WA_PHONE) == [settings.opt_out_text]
    opted = await org.api("GET", f"/supporters/{members['whatsapp']['id']}")
    assert opted["opted_out"] is True

    first = await org.announce("Rally at noon", {"teams": ["Canvassing"]})
    await org.dispatch()
    assert received(org) == {
        "sms": ["Rally at noon"],
        "whatsapp": [settings.opt_out_text],  # nothing more after STOP
        "telegram": ["Rally at noon"],
    }
    report = await org.api("GET", f"/announcements/{first['id']}")
    assert report["counts"] == {"sent": 2, "skipped": 1}

    await org.twilio_whatsapp(WA_PHONE, "start")
    await org.dispatch()
    assert (await org.api("GET", f"/supporters/{members['whatsapp']['id']}"))["opted_out"] is False

    second = await org.announce("Rally moved to 1pm", {"teams": ["Canvassing"]})
    await org.dispatch()
    assert received(org) == {
        "sms": ["Rally at noon", "Rally moved to 1pm"],
        "whatsapp": [settings.opt_out_text, settings.opt_in_text, "Rally moved to 1pm"],
        "telegram": ["Rally at noon", "Rally moved to 1pm"],
    }
    report = await org.api("GET", f"/announcements/{second['id']}")
    assert report["counts"] == {"sent": 3}


async def test_stop_by_sms_skips_the_supporter(make_client: MakeClient, clock: FakeClock) -> None:
    org = await Org.start(make_client, clock)  # Twilio answers STOP on SMS itself
    await org.team("Canvassing")
    await three_members(org, "Canvassing")

    await org.sms(SMS_PHONE, "Stop")
    created = await org.announce("Phone bank tonight", {"teams": ["Canvassing"]})
    await org.dispatch()

    assert org.providers.sms_to(SMS_PHONE) == []  # no confirmation from us, no announcement
    report = await org.api("GET", f"/announcements/{created['id']}")
    assert report["counts"] == {"sent": 2, "skipped": 1}
    assert report["by_channel"]["none"] == {"skipped": 1}


async def test_poll_answered_over_two_channels(make_client: MakeClient, clock: FakeClock) -> None:
    org = await Org.start(make_client, clock)
    await org.team("Canvassing")
    await three_members(org, "Canvassing")

    poll = await org.api(
        "POST",
        "/polls",
        202,
        json={
            "question": "Can you canvass Saturday?",
            "options": ["Yes", "No"],
            "audience": {"teams": ["Canvassing"]},
        },
    )
    await org.dispatch()
    text = "Can you canvass Saturday?\n1) Yes\n2) No\nReply with a number."
    assert received(org) == {"sms": [text], "whatsapp": [text], "telegram": [text]}

    await org.sms(SMS_PHONE, "1")
    await org.telegram(TG_CHAT, "Yes")
    await org.twilio_whatsapp(WA_PHONE, "no.")
    await org.dispatch()

    results = await org.api("GET", f"/polls/{poll['id']}")
    assert results["tally"] == [{"option": "Yes", "count": 2}, {"option": "No", "count": 1}]
    assert results["answers"] == 3
    assert results["by_channel"] == {"sms": 1, "telegram": 1, "whatsapp": 1}
    # "Yes" from a subscribed supporter answers the poll; it is no opt-in confirmation.
    assert org.providers.telegram_to(TG_CHAT) == [text]

    await org.sms(SMS_PHONE, "2")  # a changed mind: the last answer counts
    results = await org.api("GET", f"/polls/{poll['id']}")
    assert results["tally"] == [{"option": "Yes", "count": 1}, {"option": "No", "count": 2}]


async def test_idempotent_announcement_replay(make_client: MakeClient, clock: FakeClock) -> None:
    org = await Org.start(make_client, clock)
    await org.team("Canvassing")
    await three_members(org, "Canvassing")
    key = {"Idempotency-Key": "announce-2026-03-04-canvass"}
    body = "Canvass Saturday 10am"

    created = await org.announce(body, {"teams": ["Canvassing"]}, headers=key)
    await org.dispatch()
    sent_once = org.providers.requests_made()
    assert received(org) == {"sms": [body], "whatsapp": [body], "telegram": [body]}

    replay = await org.announce(body, {"teams": ["Canvassing"]}, expect=200, headers=key)
    assert (replay["id"], replay["recipients"]) == (created["id"], 3)
    await org.dispatch()
    assert org.providers.requests_made() == sent_once
    assert received(org) == {"sms": [body], "whatsapp": [body], "telegram": [body]}

    conflict = await org.client.post(
        "/api/v1/announcements",
        json={"body": "Canvass Sunday instead", "audience": {"teams": ["Canvassing"]}},
        headers=key,
    )
    assert conflict.status_code == 409, conflict.text
    await org.dispatch()
    assert org.providers.requests_made() == sent_once
    listed = await org.api("GET", "/announcements")
    assert [a["id"] for a in listed["items"]] == [created["id"]]
    report = await org.api("GET", f"/announcements/{created['id']}")
    assert report["counts"] == {"sent": 3}


async def test_team_lead_announces_only_to_their_team(
    make_client: MakeClient, clock: FakeClock
) -> None:
    org = await Org.start(make_client, clock)
    mine = await org.team("Canvassing")
    theirs = await org.team("Phone bank")
    await three_members(org, "Canvassing")
    outsider_phone = "+14155550188"
    await org.supporter(
        name="Pat Phonebank",
        addresses=[{"channel": "sms", "address": outsider_phone}],
        teams=["Phone bank"],
    )
    lead = await org.key_for("team_lead", mine["id"])

    for audience in (
        {"teams": [theirs["id"]]},
        {"all": True},
        {"teams": ["Canvassing", "Phone bank"]},
    ):
        denied = await org.client.post(
            "/api/v1/announcements",
            json={"body": "Not yours to send", "audience": audience},
            headers=lead,
        )
        assert denied.status_code == 403, (audience, denied.text)
    await org.dispatch()
    assert org.providers.requests_made() == 0

    allowed = await org.client.post(
        "/api/v1/announcements",
        json={"body": "Canvass debrief at 7", "audience": {"teams": ["Canvassing"]}},
        headers=lead,
    )
    assert allowed.status_code == 202, allowed.text
    await org.dispatch()
    assert received(org) == {
        "sms": ["Canvass debrief at 7"],
        "whatsapp": ["Canvass debrief at 7"],
        "telegram": ["Canvass debrief at 7"],
    }
    assert org.providers.sms_to(outsider_phone) == []
    seen = await org.client.get(f"/api/v1/announcements/{allowed.json()['id']}", headers=lead)
    assert seen.json()["counts"] == {"sent": 3}
