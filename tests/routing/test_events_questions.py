"""One rule for numbered replies: a reply answers the newest open question that reached
the supporter, poll or event invitation alike; YES keeps its consent meaning; each RSVP
is told to outgoing webhooks as `event.rsvp` (signed, to a real HTTP receiver)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from routing.webhooks.delivery import deliver_due
from tests.conftest import FakeClock, bearer, new_key
from tests.e2e.harness import MakeClient, Org, Providers, settings_for
from tests.webhooks_out.receiver import Receiver, running_receiver, verify

SMS = "+14155550111"


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with running_receiver() as r:
        yield r


async def member(org: Org) -> dict[str, Any]:
    await org.team("North")
    found: dict[str, Any] = await org.supporter(
        name="Sam", addresses=[{"channel": "sms", "address": SMS}], teams=["North"]
    )
    return found


async def invite(org: Org, title: str) -> Any:
    body = {"title": title, "starts_at": "2026-03-10T18:00:00Z", "audience": {"teams": ["North"]}}
    return await org.api("POST", "/events", 201, json=body)


async def ask(org: Org, question: str) -> Any:
    body = {"question": question, "options": ["Red", "Blue"], "audience": {"teams": ["North"]}}
    return await org.api("POST", "/polls", 202, json=body)


async def test_a_number_answers_the_newest_question(
    make_client: MakeClient, clock: FakeClock
) -> None:
    org = await Org.start(make_client, clock)
    await member(org)
    poll = await ask(org, "Which colour?")
    await org.dispatch()
    clock.advance(minutes=5)
    event = await invite(org, "Weekly call")
    await org.dispatch()
    clock.advance(minutes=5)
    await org.sms(SMS, "1")  # the invitation is newer: an RSVP
    assert (await org.api("GET", f"/events/{event['id']}"))["counts"]["yes"] == 1
    tally = (await org.api("GET", f"/polls/{poll['id']}"))["tally"]
    assert [t["count"] for t in tally] == [0, 0]

    later = await ask(org, "And now?")
    await org.dispatch()
    clock.advance(minutes=5)
    await org.sms(SMS, "2")  # the newer poll takes it; the RSVP stays
    tally = (await org.api("GET", f"/polls/{later['id']}"))["tally"]
    assert [t["count"] for t in tally] == [0, 1]
    assert (await org.api("GET", f"/events/{event['id']}"))["counts"]["yes"] == 1

    await org.api("POST", f"/polls/{later['id']}/close")
    await org.sms(SMS, "maybe")  # a closed poll is no question: the invitation is
    counts = (await org.api("GET", f"/events/{event['id']}"))["counts"]
    assert (counts["yes"], counts["maybe"]) == (0, 1)


async def test_yes_opts_in_first_then_answers(make_client: MakeClient, clock: FakeClock) -> None:
    org = await Org.start(make_client, clock, twilio_handles_opt_out=False)
    await member(org)
    event = await invite(org, "Weekly call")
    await org.dispatch()
    await org.sms(SMS, "STOP")
    await org.sms(SMS, "YES")  # consent: opted in again, no RSVP
    counts = (await org.api("GET", f"/events/{event['id']}"))["counts"]
    assert counts["yes"] == 0
    await org.sms(SMS, "yes")  # now an answer
    assert (await org.api("GET", f"/events/{event['id']}"))["counts"]["yes"] == 1


async def test_rsvps_are_told_to_webhooks(
    make_client: MakeClient, clock: FakeClock, receiver: Receiver
) -> None:
    providers = Providers()
    loopback = httpx.AsyncHTTPTransport()

    async def route(request: httpx.Request) -> httpx.Response:
        # The receiver is a real server on 127.0.0.1; the providers are fakes.
        if request.url.host == "127.0.0.1":
            return await loopback.handle_async_request(request)
        return await providers(request)

    client = await make_client(
        transport=httpx.MockTransport(route), **settings_for(allow_private_webhooks=True)
    )
    org = Org(client, providers, clock)
    client.headers.update(bearer(await new_key(org.ctx)))
    sam = await member(org)
    hook = await org.api(
        "POST", "/webhooks", 201, json={"url": receiver.url, "events": ["event.rsvp"]}
    )
    event = await invite(org, "Weekly call")
    await org.dispatch()
    await org.sms(SMS, "3")
    assert await deliver_due(org.ctx, "test") == 1
    [got] = receiver.received
    assert verify(hook["secret"], got.signature, got.body, clock().timestamp())
    data = got.payload["data"]
    assert got.payload["type"] == "event.rsvp"
    assert data["supporter"]["id"] == sam["id"] and data["channel"] == "sms"
    assert data["event"] == {"id": event["id"], "title": "Weekly call", "kind": "call"}
    assert data["rsvp"]["answer"] == "maybe"
    assert data["rsvp"]["starts_at"].startswith("2026-03-10T18:00:00")
