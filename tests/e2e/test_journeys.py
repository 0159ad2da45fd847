"""Longer journeys across channels: joining over WhatsApp and Telegram and then hearing
the team's announcements, consent over Telegram and over SMS, a Twilio 21610 refusal, and
one person writing from the same number on SMS and WhatsApp."""

from __future__ import annotations

from channels.twilio.fake import Reply
from tests.conftest import FakeClock
from tests.e2e.harness import MakeClient, Org

PHONE = "+14155550177"
TG_CHAT = 5550188


async def test_join_by_sms_then_hear_the_team(make_client: MakeClient, clock: FakeClock) -> None:
    org = await Org.start(make_client, clock)
    await org.team("Canvassing", welcome_text="Welcome, {name}!")
    for text in ("join", "Ruth Otieno", "canvassing"):
        await org.sms(PHONE, text)
        await org.dispatch()
    created = await org.announce("First canvass Saturday", {"teams": ["Canvassing"]})
    assert created["recipients"] == 1
    await org.dispatch()
    assert org.providers.sms_to(PHONE)[2:] == ["Welcome, Ruth Otieno!", "First canvass Saturday"]


async def test_join_over_cloud_whatsapp_then_hear_the_team(
    make_client: MakeClient, clock: FakeClock
) -> None:
    org = await Org.start(make_client, clock, cloud_whatsapp=True, org_name="Sunrise Hub")
    await org.team("Canvassing", orientation_call="Monday 7pm")
    await org.cloud_whatsapp(PHONE, "JOIN", name="Profile Name")
    await org.cloud_whatsapp(PHONE, "Amina Wanjiru")
    await org.cloud_whatsapp(PHONE, "1")
    await org.dispatch()
    assert org.providers.cloud_whatsapp_to(PHONE) == [
        "Welcome to Sunrise Hub! What's your name?",
        "Which team would you like to join? 1) Canvassing. Reply with a number.",
        "Welcome to Canvassing, Amina Wanjiru!\nNext orientation call: Monday 7pm",
    ]
    created = await org.announce("Canvass Saturday", {"teams": ["Canvassing"]})
    await org.dispatch()
    assert org.providers.cloud_whatsapp_to(PHONE)[-1] == "Canvass Saturday"
    report = await org.api("GET", f"/announcements/{created['id']}")
    assert report["by_channel"] == {"whatsapp": {"sent": 1}}
    assert org.providers.twilio.requests == []


async def test_telegram_join_stop_start(make_client: MakeClient, clock: FakeClock) -> None:
    org = await Org.start(make_client, clock, org_name="Sunrise Hub")
    await org.team("Phone bank")
    for text in ("/start", "Tom Mboya", "1"):
        await org.telegram(TG_CHAT, text)
    await org.dispatch()
    assert org.providers.telegram_to(TG_CHAT) == [
        "Welcome to Sunrise Hub! What's your name?",
        "Which team would you like to join? 1) Phone bank. Reply with a number.",
        "Welcome to Phone bank, Tom Mboya!",
    ]
    settings = org.ctx.settings

    await org.telegram(TG_CHAT, "/stop")
    skipped = await org.announce("Calls tonight", {"teams": ["Phone bank"]})
    await org.dispatch()
    assert org.providers.telegram_to(TG_CHAT)[3:] == [settings.opt_out_text]
    assert (await org.api("GET", f"/announcements/{skipped['id']}"))["counts"] == {"skipped": 1}

    await org.telegram(TG_CHAT, "/start")  # opted out: this opts back in, no onboarding
    reached = await org.announce("Calls tomorrow", {"teams": ["Phone bank"]})
    await org.dispatch()
    assert org.providers.telegram_to(TG_CHAT)[4:] == [settings.opt_in_text, "Calls tomorrow"]
    assert (await org.api("GET", f"/announcements/{reached['id']}"))["counts"] == {"sent": 1}


async def test_sms_stop_confirmed_by_us_when_twilio_does_not(
    make_client: MakeClient, clock: FakeClock
) -> None:
    org = await Org.start(make_client, clock, twilio_handles_opt_out=False)
    await org.team("Canvassing")
    await org.supporter(
        name="Sam", addresses=[{"channel": "sms", "address": PHONE}], teams=["Canvassing"]
    )
    await org.sms(PHONE, "UNSUBSCRIBE")
    await org.announce("Canvass Saturday", {"teams": ["Canvassing"]})
    await org.dispatch()
    assert org.providers.sms_to(PHONE) == [org.ctx.settings.opt_out_text]
    await org.sms(PHONE, "UNSTOP")
    await org.announce("Canvass Sunday", {"teams": ["Canvassing"]})
    await org.dispatch()
    assert org.providers.sms_to(PHONE) == [
        org.ctx.settings.opt_out_text,
        org.ctx.settings.opt_in_text,
        "Canvass Sunday",
    ]


async def test_twilio_21610_opts_the_supporter_out(
    make_client: MakeClient, clock: FakeClock
) -> None:
    org = await Org.start(make_client, clock)
    await org.team("Canvassing")
    sam = await org.supporter(
        name="Sam", addresses=[{"channel": "sms", "address": PHONE}], teams=["Canvassing"]
    )
    org.providers.twilio.script(PHONE, Reply.error(21610, message="replied STOP"))
    first = await org.announce("Canvass Saturday", {"teams": ["Canvassing"]})
    await org.dispatch()
    assert org.providers.sms_to(PHONE) == []
    assert len(org.providers.twilio.requests) == 1  # refused once, not retried
    assert (await org.api("GET", f"/announcements/{first['id']}"))["counts"] == {"failed": 1}
    assert (await org.api("GET", f"/supporters/{sam['id']}"))["opted_out"] is True

    second = await org.announce("Canvass Sunday", {"teams": ["Canvassing"]})
    await org.dispatch()
    assert len(org.providers.twilio.requests) == 1
    assert (await org.api("GET", f"/announcements/{second['id']}"))["counts"] == {"skipped": 1}


async def test_one_number_on_sms_and_whatsapp_is_one_member(
    make_client: MakeClient, clock: FakeClock
) -> None:
    org = await Org.start(make_client, clock)
    await org.team("Canvassing")
    await org.sms(PHONE, "hi, this is Ruth")
    await org.twilio_whatsapp(PHONE, "and here on WhatsApp", profile="Ruth O.")
    [supporter] = (await org.api("GET", "/supporters"))["items"]
    assert sorted(a["channel"] for a in supporter["addresses"]) == ["sms", "whatsapp"]
    await org.api("PATCH", f"/supporters/{supporter['id']}", json={"teams": ["Canvassing"]})

    created = await org.announce("Canvass Saturday", {"teams": ["Canvassing"]})
    assert created["recipients"] == 1
    await org.dispatch()
    # The default order puts WhatsApp first, and her window is open: once, over WhatsApp.
    assert org.providers.twilio_whatsapp_to(PHONE) == ["Canvass Saturday"]
    assert org.providers.sms_to(PHONE) == []
