"""Messages to one supporter leave in the order they were queued, even when the dispatcher
claims them in one batch; different supporters are still sent to concurrently.

Regression: the dispatcher sent every claimed row at once, so a recruit answering
quickly could get the team welcome before the team question (seen over the Cloud API)."""

from __future__ import annotations

import asyncio

import httpx

from tests.conftest import FakeClock
from tests.e2e.harness import MakeClient, Org

FIRST = "+14155550101"
SECOND = "+14155550102"


async def supporter_id(org: Org, phone: str) -> int:
    created = await org.supporter(name=phone, addresses=[{"channel": "sms", "address": phone}])
    return int(created["id"])


async def test_one_supporters_messages_keep_their_order(
    make_client: MakeClient, clock: FakeClock
) -> None:
    org = await Org.start(make_client, clock)
    sid = await supporter_id(org, FIRST)

    later_arrived = asyncio.Event()

    async def slow_first(request: httpx.Request) -> None:
        if b"Body=first" not in request.content:
            later_arrived.set()
            return
        # Yield to the loop (bounded, no sleeping): a concurrent send would overtake here.
        for _ in range(5000):
            if later_arrived.is_set():
                return
            await asyncio.sleep(0)

    org.providers.twilio.delay = slow_first
    for body in ("first", "second", "third"):
        await org.api("POST", f"/supporters/{sid}/messages", 202, json={"body": body})
    assert await org.dispatch() == 3
    assert org.providers.sms_to(FIRST) == ["first", "second", "third"]


async def test_onboarding_replies_in_order_over_cloud_whatsapp(
    make_client: MakeClient, clock: FakeClock
) -> None:
    org = await Org.start(make_client, clock, cloud_whatsapp=True, org_name="Sunrise Hub")
    await org.team("Canvassing", orientation_call="Monday 7pm")
    for text in ("JOIN", "Amina Wanjiru", "1"):  # answered before the dispatcher ran
        await org.cloud_whatsapp(FIRST, text)
    await org.dispatch()
    assert org.providers.cloud_whatsapp_to(FIRST) == [
        "Welcome to Sunrise Hub! What's your name?",
        "Which team would you like to join? 1) Canvassing. Reply with a number.",
        "Welcome to Canvassing, Amina Wanjiru!\nNext orientation call: Monday 7pm",
    ]


async def test_different_supporters_are_sent_concurrently(
    make_client: MakeClient, clock: FakeClock
) -> None:
    org = await Org.start(make_client, clock, twilio_rate_per_second=100)
    first, second = await supporter_id(org, FIRST), await supporter_id(org, SECOND)
    second_arrived = asyncio.Event()

    async def first_waits_for_second(request: httpx.Request) -> None:
        if b"Body=to-first" in request.content:
            # Only a dispatcher that sends both at once gets past this (bounded wait).
            await asyncio.wait_for(second_arrived.wait(), timeout=5)
        else:
            second_arrived.set()

    org.providers.twilio.delay = first_waits_for_second
    await org.api("POST", f"/supporters/{first}/messages", 202, json={"body": "to-first"})
    await org.api("POST", f"/supporters/{second}/messages", 202, json={"body": "to-second"})
    await org.dispatch()
    assert org.providers.sms_to(FIRST) == ["to-first"]
    assert org.providers.sms_to(SECOND) == ["to-second"]
