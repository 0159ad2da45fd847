"""Circuit breakers: a provider that fails every send opens its channel's circuit, new
sends fall back at once instead of each spending its retries, a probe closes it again,
and /healthz and /metrics show it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

import httpx

from channels.base import InvalidRecipient, ProviderUnavailable
from channels.twilio.fake import FakeTwilio, Reply
from routing.dispatch.breaker import CLOSED, OPEN, PROBING, Breakers
from tests.channels.twilio_case import ACCOUNT_SID, AUTH_TOKEN, SETTINGS
from tests.conftest import FakeClock
from tests.routing.fake_adapter import (
    FakeAdapter,
    add_supporter,
    attempts_of,
    load,
    make_dispatcher,
    outbox_of,
    queue,
    with_adapters,
)

ClientFactory = Callable[..., Awaitable[httpx.AsyncClient]]
KEY = ("sms", "twilio:+15005550006")


def test_a_circuit_opens_after_outages_in_a_row_and_a_probe_closes_it(clock: FakeClock) -> None:
    breakers = Breakers(clock, threshold=3, cooldown=30, max_cooldown=100)
    outage = ProviderUnavailable("503")
    assert breakers.record(KEY, outage) is None
    # An answer that is not an outage (the provider is up) starts the count again.
    assert breakers.record(KEY, InvalidRecipient("21211")) is None
    assert breakers.record(KEY, outage) is None
    assert breakers.record(KEY, outage) is None
    change = breakers.record(KEY, outage)
    assert change is not None and (change.state, change.failures) == (OPEN, 3)
    assert change.until == clock() + timedelta(seconds=30)
    assert breakers.admit(KEY) == (clock() + timedelta(seconds=30), None)
    assert breakers.admit(("sms", "another sender")) == (None, None)

    clock.advance(seconds=30)
    allowed, probe = breakers.admit(KEY)
    assert allowed is None and probe is not None and probe.state == PROBING
    assert breakers.admit(KEY)[0] is not None  # one probe at a time
    # The probe fails: open again, twice as long.
    change = breakers.record(KEY, outage)
    assert change is not None and change.state == OPEN
    assert change.until == clock() + timedelta(seconds=60)
    clock.advance(seconds=60)
    assert breakers.admit(KEY)[0] is None
    change = breakers.record(KEY, outage)
    assert change is not None and change.until == clock() + timedelta(seconds=100)  # capped
    clock.advance(seconds=100)
    assert breakers.admit(KEY)[0] is None
    change = breakers.record(KEY, None)
    assert change is not None and (change.state, change.failures) == (CLOSED, 0)
    assert breakers.admit(KEY) == (None, None)


async def test_sends_fall_back_at_once_while_the_circuit_is_open(
    make_client: ClientFactory, clock: FakeClock
) -> None:
    sms = FakeAdapter(channels=("sms",), provider="fake-sms")
    email = FakeAdapter(channels=("email",), provider="fake-email")
    _, ctx = await with_adapters(make_client, sms, email, max_attempts=6)
    people = [(f"+1415555{n:04d}", f"p{n}@example.org") for n in range(20)]
    ids = []
    for phone, mail in people:
        sms.fail(phone, *[ProviderUnavailable("503")] * 6)
        ids.append(await queue(ctx, await add_supporter(ctx, {"sms": phone, "email": mail})))
    dispatcher = make_dispatcher(ctx, clock, concurrency=1)

    await dispatcher.run_until_idle()
    # Five outages open the circuit; the other fifteen went to email without an SMS try.
    assert len(sms.calls) == 5
    assert len(email.accepted) == 15
    clock.advance(seconds=2)  # the five's retries come due while the circuit is open
    await dispatcher.run_until_idle()
    assert len(sms.calls) == 5
    assert sorted(m.to for _, m in email.accepted) == sorted(mail for _, mail in people)
    for message_id in ids:
        message = await load(ctx, message_id)
        assert (message.status, message.channel) == ("sent", "email")
    later = [a.error_code for a in await attempts_of(ctx, ids[-1])]
    assert later == ["circuit_open", None]  # not sent on SMS, then sent by email
    await dispatcher.flush_circuits()


async def test_without_another_channel_a_message_waits_for_the_probe(
    make_client: ClientFactory, clock: FakeClock
) -> None:
    sms = FakeAdapter(channels=("sms",), provider="fake-sms")
    _, ctx = await with_adapters(make_client, sms, max_attempts=6)
    phones = [f"+1415555{n:04d}" for n in range(6)]
    for phone in phones[:5]:
        sms.fail(phone, ProviderUnavailable("503"))
    ids = [await queue(ctx, await add_supporter(ctx, {"sms": p})) for p in phones]
    dispatcher = make_dispatcher(ctx, clock, concurrency=1)
    start = clock()

    await dispatcher.run_until_idle()
    assert len(sms.calls) == 5  # the sixth was not tried: the circuit opened
    waiting = await load(ctx, ids[5])
    assert waiting.status == "queued"
    assert waiting.error == "sms: its provider is failing; waiting for it (no other channel)"
    item = await outbox_of(ctx, ids[5])
    assert item is not None
    # Due at the probe, and the try it did not make is not counted.
    assert (item.due_at, item.attempts) == (start + timedelta(seconds=30), 0)

    clock.advance(seconds=30)  # the provider is back: the probe goes out and succeeds
    await dispatcher.run_until_idle()
    assert {(await load(ctx, m)).status for m in ids} == {"sent"}
    assert sorted(m.to for _, m in sms.accepted) == phones  # each once
    await dispatcher.flush_circuits()


async def test_healthz_and_metrics_show_an_open_circuit_on_twilio_outage(
    make_client: ClientFactory, clock: FakeClock
) -> None:
    """Twilio answering 500 to every send, at the wire: the circuit opens after five, the
    state is in /healthz and /metrics, and closes when a probe gets through."""
    fake = FakeTwilio(ACCOUNT_SID, AUTH_TOKEN)
    client = await make_client(transport=httpx.MockTransport(fake), **SETTINGS)
    ctx = client.ctx  # type: ignore[attr-defined]
    phones = [f"+25471200{n:04d}" for n in range(6)]
    for phone in phones[:5]:
        fake.script(phone, Reply.server_error(500))
    ids = [await queue(ctx, await add_supporter(ctx, {"sms": p})) for p in phones]
    dispatcher = make_dispatcher(ctx, clock, concurrency=1)

    await dispatcher.run_until_idle()
    await dispatcher.flush_circuits()
    assert len(fake.requests) == 5
    health = (await client.get("/healthz")).json()
    assert health["status"] == "degraded"
    [circuit] = health["circuits"]
    assert (circuit["channel"], circuit["state"], circuit["failures"]) == ("sms", "open", 5)
    assert SETTINGS["twilio_sms_from"] not in str(health)  # our number is masked
    metrics = (await client.get("/metrics")).text
    assert 'rallypoint_circuits_open{channel="sms"} 1.0' in metrics

    clock.advance(seconds=30)
    await dispatcher.run_until_idle()
    await dispatcher.flush_circuits()
    assert {(await load(ctx, m)).status for m in ids} == {"sent"}
    health = (await client.get("/healthz")).json()
    assert (health["status"], health["circuits"]) == ("ok", [])
    assert 'rallypoint_circuits_open{channel="sms"}' not in (await client.get("/metrics")).text
