"""Delivery end to end (issue 5): falling back from WhatsApp to SMS after a permanent
failure (Twilio 63016 at send time, the Cloud API's later 131047 status), quiet hours in
the supporter's timezone, and weekly check-ins with nudges, all on the injected clock."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from channels.twilio.fake import Reply
from routing.organizing.checkins import run_due_checkins
from tests.conftest import FakeClock
from tests.e2e.harness import MakeClient, Org

PHONE = "+14155550144"
NAIROBI_PHONE = "+254712345601"
TG_CHAT = 5550155


async def dual_channel_member(org: Org, team: str) -> dict[str, Any]:
    """One person, one number, on WhatsApp first and SMS second."""
    return await org.supporter(
        name="Dana Dual",
        addresses=[
            {"channel": "whatsapp", "address": PHONE},
            {"channel": "sms", "address": PHONE},
        ],
        preferred_channels=["whatsapp", "sms"],
        teams=[team],
    )


async def outbound_of(org: Org, supporter_id: int) -> list[dict[str, Any]]:
    [convo] = (await org.api("GET", "/conversations", params={"supporter_id": supporter_id}))[
        "items"
    ]
    items = (await org.api("GET", f"/conversations/{convo['id']}/messages"))["items"]
    return [m for m in items if m["direction"] == "outbound"]


async def test_twilio_whatsapp_63016_falls_back_to_sms(
    make_client: MakeClient, clock: FakeClock
) -> None:
    org = await Org.start(make_client, clock)
    await org.team("Canvassing")
    dana = await dual_channel_member(org, "Canvassing")
    await org.twilio_whatsapp(PHONE, "Hello!")
    org.providers.twilio.script(PHONE, Reply.error(63016, message="outside the window"))

    created = await org.announce("Canvass Saturday 10am", {"teams": ["Canvassing"]})
    await org.dispatch()

    assert org.providers.twilio_whatsapp_to(PHONE) == []  # refused: never accepted
    [whatsapp_try, sms] = org.providers.twilio.requests
    assert (whatsapp_try.get("To"), whatsapp_try.sid) == (f"whatsapp:{PHONE}", None)
    assert org.providers.sms_to(PHONE) == ["Canvass Saturday 10am"]
    [message] = await outbound_of(org, dana["id"])
    detail = await org.api("GET", f"/messages/{message['id']}")
    assert (detail["channel"], detail["status"], detail["provider_message_id"]) == (
        "sms",
        "sent",
        sms.sid,
    )
    assert [(a["channel"], a["status"]) for a in detail["attempts"]] == [
        ("whatsapp", "failed"),
        ("sms", "sent"),
    ]
    assert "63016" in (detail["attempts"][0]["error"] or "")
    report = await org.api("GET", f"/announcements/{created['id']}")
    assert report["counts"] == {"sent": 1}
    assert report["by_channel"] == {"sms": {"sent": 1}}


async def test_cloud_whatsapp_131047_status_falls_back_to_sms(
    make_client: MakeClient, clock: FakeClock
) -> None:
    org = await Org.start(make_client, clock, cloud_whatsapp=True)
    await org.team("Canvassing")
    dana = await dual_channel_member(org, "Canvassing")
    await org.cloud_whatsapp(PHONE, "Hello!")

    await org.announce("Canvass Saturday 10am", {"teams": ["Canvassing"]})
    await org.dispatch()
    assert org.providers.cloud_whatsapp_to(PHONE) == ["Canvass Saturday 10am"]
    assert org.providers.twilio.requests == []  # the Cloud API sends WhatsApp, not Twilio
    [accepted] = org.providers.cloud.accepted
    assert accepted.wamid is not None

    body, headers = org.providers.cloud.status_webhook(accepted.wamid, "failed", error_code=131047)
    answer = await org.client.post("/webhooks/whatsapp", content=body, headers=headers)
    assert answer.status_code == 200
    await org.dispatch()

    assert org.providers.sms_to(PHONE) == ["Canvass Saturday 10am"]
    [message] = await outbound_of(org, dana["id"])
    detail = await org.api("GET", f"/messages/{message['id']}")
    assert (detail["channel"], detail["status"]) == ("sms", "sent")
    assert [(a["channel"], a["provider_message_id"]) for a in detail["attempts"]] == [
        ("whatsapp", accepted.wamid),
        ("sms", org.providers.twilio.sent[0].sid),
    ]
    await org.dispatch()
    assert len(org.providers.cloud.requests) == 1 and len(org.providers.twilio.requests) == 1


async def test_quiet_hours_hold_announcements_not_one_on_ones(
    make_client: MakeClient, clock: FakeClock
) -> None:
    org = await Org.start(make_client, clock)
    await org.team("Canvassing")
    nairobi = await org.supporter(
        name="Achieng Nairobi",
        addresses=[{"channel": "sms", "address": NAIROBI_PHONE}],
        timezone="Africa/Nairobi",
        teams=["Canvassing"],
    )
    utc_phone = "+14155550166"
    await org.supporter(
        name="Uma Utc", addresses=[{"channel": "sms", "address": utc_phone}], teams=["Canvassing"]
    )
    clock.set(datetime(2026, 3, 4, 20, 0, tzinfo=UTC))  # 23:00 in Nairobi, 20:00 in UTC

    created = await org.announce("Canvass tomorrow 10am", {"teams": ["Canvassing"]})
    queued = await org.api(
        "POST", f"/supporters/{nairobi['id']}/messages", 202, json={"body": "Call me back?"}
    )
    await org.dispatch()
    assert org.providers.sms_to(NAIROBI_PHONE) == ["Call me back?"]  # one-on-one: at once
    assert org.providers.sms_to(utc_phone) == ["Canvass tomorrow 10am"]  # not night for Uma
    assert (await org.api("GET", f"/messages/{queued['id']}"))["status"] == "sent"
    report = await org.api("GET", f"/announcements/{created['id']}")
    assert report["counts"] == {"sent": 1, "queued": 1}

    clock.set(datetime(2026, 3, 5, 4, 59, tzinfo=UTC))  # 07:59 in Nairobi
    await org.dispatch()
    assert org.providers.sms_to(NAIROBI_PHONE) == ["Call me back?"]

    clock.set(datetime(2026, 3, 5, 5, 0, tzinfo=UTC))  # 08:00 in Nairobi
    await org.dispatch()
    assert org.providers.sms_to(NAIROBI_PHONE) == ["Call me back?", "Canvass tomorrow 10am"]
    assert org.providers.sms_to(utc_phone) == ["Canvass tomorrow 10am"]
    report = await org.api("GET", f"/announcements/{created['id']}")
    assert report["counts"] == {"sent": 2}


async def test_weekly_checkin_and_nudges(make_client: MakeClient, clock: FakeClock) -> None:
    org = await Org.start(make_client, clock)  # Wednesday 2026-03-04 15:00 UTC
    team = await org.team("Canvassing")
    quiet = await org.supporter(
        name="Quinn Quiet",
        addresses=[{"channel": "sms", "address": PHONE}],
        teams=["Canvassing"],
    )
    talker = await org.supporter(
        name="Tess Talker",
        addresses=[{"channel": "telegram", "address": str(TG_CHAT)}],
        teams=["Canvassing"],
    )
    checkin = await org.api(
        "POST",
        f"/teams/{team['id']}/checkins",
        201,
        json={
            "weekday": 3,  # Thursday
            "local_time": "18:00",
            "prompt": "Weekly check-in: how did canvassing go?",
            "inactive_days": 1,
            "nudge_text": "Hi {name}, we miss you! Reply to say hi.",
        },
    )
    assert checkin["next_run_at"].startswith("2026-03-05T18:00:00")
    prompt = "Weekly check-in: how did canvassing go?"
    nudge = "Hi Quinn, we miss you! Reply to say hi."

    clock.set(datetime(2026, 3, 5, 10, 0, tzinfo=UTC))
    await org.telegram(TG_CHAT, "Knocked 40 doors yesterday")  # Tess is active

    clock.set(datetime(2026, 3, 5, 17, 59, tzinfo=UTC))
    assert (await run_due_checkins(org.ctx)).runs == []
    await org.dispatch()
    assert org.providers.requests_made() == 0

    clock.set(datetime(2026, 3, 5, 18, 0, tzinfo=UTC))
    [run] = (await run_due_checkins(org.ctx)).runs
    assert (run.checkin_id, run.prompts, run.nudges) == (checkin["id"], 2, 1)
    await org.dispatch()
    assert sorted(org.providers.sms_to(PHONE)) == sorted([prompt, nudge])
    assert org.providers.telegram_to(TG_CHAT) == [prompt]
    report = await org.api("GET", f"/announcements/{run.announcement_id}")
    assert (report["kind"], report["counts"]) == ("checkin", {"sent": 2})

    clock.set(datetime(2026, 3, 5, 18, 5, tzinfo=UTC))  # the same occurrence: not again
    assert (await run_due_checkins(org.ctx)).runs == []
    await org.dispatch()
    assert len(org.providers.sms_to(PHONE)) == 2
    seen = await org.api("GET", f"/checkins/{checkin['id']}")
    assert seen["last_run_at"].startswith("2026-03-05T18:00:00")
    assert seen["next_run_at"].startswith("2026-03-12T18:00:00")

    # A week on: the prompt again; Quinn, still quiet, is not nudged twice in one lull,
    # while Tess, quiet for a week now, gets her first nudge.
    clock.set(datetime(2026, 3, 12, 18, 0, tzinfo=UTC))
    [again] = (await run_due_checkins(org.ctx)).runs
    assert again.nudges == 1
    await org.dispatch()
    assert sorted(org.providers.sms_to(PHONE)) == sorted([prompt, nudge, prompt])
    assert sorted(org.providers.telegram_to(TG_CHAT)) == sorted(
        [prompt, prompt, "Hi Tess, we miss you! Reply to say hi."]
    )
    due = await org.api("GET", "/checkins/due", params={"team": "Canvassing"})
    assert due["days"] == 1
    assert [s["supporter_id"] for s in due["items"]] == [quiet["id"], talker["id"]]
