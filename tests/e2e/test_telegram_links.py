"""Telegram deep links end to end: the organizer asks for a link (its url names the bot,
from getMe), the supporter's chat, which often wrote before the link arrived, opens it."""

from __future__ import annotations

from typing import Any

from channels.telegram.fake import BOT_USER
from tests.conftest import FakeClock
from tests.e2e.harness import MakeClient, Org

CHAT = 5550177
PHONE = "+14155550177"


async def link_for(org: Org, supporter_id: int) -> str:
    link = await org.api("POST", f"/supporters/{supporter_id}/telegram-link")
    assert link["url"] == f"https://t.me/{BOT_USER['username']}?start={link['token']}"
    return str(link["token"])


async def messages_of(org: Org, supporter_id: int) -> list[dict[str, Any]]:
    [convo] = (await org.api("GET", "/conversations", params={"supporter_id": supporter_id}))[
        "items"
    ]
    page = await org.api("GET", f"/conversations/{convo['id']}/messages")
    return list(page["items"])


async def test_a_chat_that_wrote_first_is_merged_into_the_linked_supporter(
    make_client: MakeClient, clock: FakeClock
) -> None:
    org = await Org.start(make_client, clock)
    await org.telegram(CHAT, "Hello, a friend told me about you")
    await org.telegram(CHAT, "/start")  # onboarding asks their name...
    await org.dispatch()
    [stranger] = (await org.api("GET", "/supporters"))["items"]
    amina = await org.supporter(
        name="Amina Otieno", addresses=[{"channel": "sms", "address": PHONE}]
    )
    token = await link_for(org, amina["id"])
    clock.advance(minutes=5)

    await org.telegram(CHAT, f"/start {token}")  # ...but the organizer's link comes first
    await org.telegram(CHAT, "Thanks!")  # no answer to onboarding: that was dropped

    [only] = (await org.api("GET", "/supporters"))["items"]
    assert (only["id"], only["name"]) == (amina["id"], "Amina Otieno")
    assert {(a["channel"], a["address"]) for a in only["addresses"]} == {
        ("sms", PHONE),
        ("telegram", str(CHAT)),
    }
    await org.api("GET", f"/supporters/{stranger['id']}", 404)
    assert len((await org.api("GET", "/conversations"))["items"]) == 1
    messages = await messages_of(org, amina["id"])
    assert [(m["direction"], m["body"]) for m in messages] == [
        ("inbound", "Hello, a friend told me about you"),
        ("inbound", "/start"),
        ("outbound", "Welcome to Rallypoint! What's your name?"),
        ("inbound", "/start"),
        ("inbound", "Thanks!"),
    ]
    assert {m["supporter_id"] for m in messages} == {amina["id"]}

    # The token is spent: another chat opening the same link is someone new.
    await org.telegram(5550999, f"/start {token}")
    people = (await org.api("GET", "/supporters"))["items"]
    assert len(people) == 2
    assert people[0]["addresses"] == only["addresses"]

    # And the organizer's messages to Amina now reach the chat.
    await org.api(
        "POST",
        f"/supporters/{amina['id']}/messages",
        202,
        json={"body": "Great to have you, Amina", "channel": "telegram"},
    )
    await org.dispatch()
    assert org.providers.telegram_to(CHAT)[-1] == "Great to have you, Amina"


async def test_a_chat_that_said_stop_is_subscribed_again_by_opening_the_link(
    make_client: MakeClient, clock: FakeClock
) -> None:
    org = await Org.start(make_client, clock)
    await org.telegram(CHAT, "STOP")
    await org.dispatch()
    amina = await org.supporter(
        name="Amina Otieno", addresses=[{"channel": "sms", "address": PHONE}]
    )
    token = await link_for(org, amina["id"])

    await org.telegram(CHAT, f"/start {token}")  # a /start: Telegram's START
    await org.dispatch()

    consent = await org.api("GET", f"/supporters/{amina['id']}/consent")
    assert consent["opted_out"] is False
    assert [(e["action"], e["channel"]) for e in consent["items"]] == [
        ("opt_out", "telegram"),
        ("opt_in", "telegram"),
    ]
    settings = org.ctx.settings
    assert org.providers.telegram_to(CHAT) == [settings.opt_out_text, settings.opt_in_text]
    assert len((await org.api("GET", "/supporters"))["items"]) == 1


async def test_a_merge_keeps_one_answer_and_one_copy_of_a_poll_each_got(
    make_client: MakeClient, clock: FakeClock
) -> None:
    org = await Org.start(make_client, clock)
    await org.telegram(CHAT, "hi")
    amina = await org.supporter(
        name="Amina Otieno", addresses=[{"channel": "sms", "address": PHONE}]
    )
    poll = await org.api(
        "POST",
        "/polls",
        202,
        json={"question": "Saturday?", "options": ["Yes", "No"], "audience": {"all": True}},
    )
    await org.dispatch()
    await org.sms(PHONE, "2")
    await org.telegram(CHAT, "1")  # the same person, twice: Amina's own answer is kept
    token = await link_for(org, amina["id"])

    await org.telegram(CHAT, f"/start {token}")

    results = await org.api("GET", f"/polls/{poll['id']}")
    assert results["tally"] == [{"option": "Yes", "count": 0}, {"option": "No", "count": 1}]
    polls = [m for m in await messages_of(org, amina["id"]) if m["kind"] == "poll"]
    assert [(m["channel"], m["announcement_id"]) for m in polls] == [
        ("telegram", None),  # the stranger's copy stays as history, no longer counted
        ("sms", poll["announcement_id"]),
    ]
