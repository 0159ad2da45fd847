"""Failed sends are recorded in the recorder's batches, as successes are: a throttling
storm costs a few transactions, and every retry, fallback and opt-out comes out as it did
one at a time."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.exc import OperationalError
from sqlmodel import col, select

from channels.base import InvalidRecipient, ProviderUnavailable, RecipientOptedOut, Throttled
from routing.context import AppContext
from routing.dispatch.dispatcher import Dispatcher
from routing.dispatch.outcome import INTERRUPTED
from storage.models import ConsentEvent, Supporter, SupporterAddress
from tests.conftest import FakeClock
from tests.routing.fake_adapter import (
    FakeAdapter,
    add_supporter,
    attempts_of,
    events_of,
    load,
    make_dispatcher,
    outbox_of,
    queue,
    until,
    with_adapters,
)


def count_commits(ctx: AppContext) -> list[str]:
    """Grows by one entry at each commit on the app's engine."""
    commits: list[str] = []
    event.listen(ctx.engine.sync_engine, "commit", lambda _conn: commits.append("commit"))
    return commits


async def test_a_storm_of_throttled_and_unavailable_sends_takes_a_few_transactions(
    make_client, clock: FakeClock
) -> None:
    sms = FakeAdapter(channels=("sms",), provider="fake-sms")
    _, ctx = await with_adapters(make_client, sms, max_attempts=5)
    phones = [f"+1415555{n:04d}" for n in range(60)]
    ids = [await queue(ctx, await add_supporter(ctx, {"sms": p}, name=p), p) for p in phones]
    # A third each: an outage, a 429 asking for 30 s, a 429 asking for less than the backoff.
    errors = [
        ProviderUnavailable("503"),
        Throttled("429", retry_after=30, code="20429"),
        Throttled("429", retry_after=1, code="20429"),
    ]
    for n, phone in enumerate(phones):
        sms.fail(phone, errors[n % 3])
    dispatcher = make_dispatcher(ctx, clock, concurrency=60)
    commits = count_commits(ctx)

    start = clock()
    assert await dispatcher.run_once() == 60
    assert len(sms.calls) == 60 and sms.accepted == []
    assert len(commits) <= 4  # the claim and a few batches, not one per failure
    for n, message_id in enumerate(ids):
        wait, text = [(2, "503"), (30, "429"), (2, "429")][n % 3]
        message = await load(ctx, message_id)
        assert (message.status, message.channel) == ("queued", "sms")
        assert message.error == f"sms: {text} (retrying in {wait} s)"
        item = await outbox_of(ctx, message_id)
        assert item is not None and item.lease_owner is None and item.lease_until is None
        assert (item.attempts, item.due_at) == (1, start + timedelta(seconds=wait))
        [attempt] = await attempts_of(ctx, message_id)
        assert (attempt.status, attempt.error, attempt.provider_message_id) == (
            "failed",
            text,
            None,
        )
        assert attempt.error_code == (None if n % 3 == 0 else "20429")
        assert await events_of(ctx, message_id) == []  # a retry is not a status change

    # The second try of the rows due after 2 s fails again: counted, and the backoff doubles.
    clock.advance(seconds=2)
    for n, phone in enumerate(phones):
        if n % 3 != 1:
            sms.fail(phone, errors[n % 3])
    assert await dispatcher.run_once() == 40
    for n, message_id in enumerate(ids):
        item = await outbox_of(ctx, message_id)
        assert item is not None
        if n % 3 == 1:
            assert (item.attempts, item.due_at) == (1, start + timedelta(seconds=30))
        else:
            assert (item.attempts, item.due_at) == (2, clock() + timedelta(seconds=4))

    clock.advance(seconds=30)
    assert await dispatcher.run_until_idle() == 60
    assert {(await load(ctx, m)).status for m in ids} == {"sent"}
    assert sorted(m.to for _, m in sms.accepted) == phones  # each exactly once
    assert len(sms.calls) == 160


async def mixed_batch(
    make_client: Any, clock: FakeClock
) -> tuple[AppContext, Dispatcher, dict[str, int], int, FakeAdapter, FakeAdapter]:
    """Six messages whose sends fail in every way but one, and the dispatcher about to
    claim them all in one chunk: (ctx, dispatcher, message ids by case, the blocking
    supporter, the SMS and email fakes)."""
    sms = FakeAdapter(channels=("sms",), provider="fake-sms")
    email = FakeAdapter(channels=("email",), provider="fake-email")
    telegram = FakeAdapter(channels=("telegram",), provider="fake-telegram")
    _, ctx = await with_adapters(make_client, sms, email, telegram, max_attempts=2)
    dispatcher = make_dispatcher(ctx, clock, concurrency=8)
    # Its first try on SMS fails before the others are queued: its second is its last.
    exhausted = await queue(
        ctx, await add_supporter(ctx, {"sms": "+14155550001", "email": "ex@example.org"})
    )
    sms.fail("+14155550001", ProviderUnavailable("503"), ProviderUnavailable("503"))
    assert await dispatcher.run_once() == 1
    clock.advance(seconds=2)

    ids = {"exhausted": exhausted}
    ids["sent"] = await queue(ctx, await add_supporter(ctx, {"sms": "+14155550002"}))
    ids["retry"] = await queue(ctx, await add_supporter(ctx, {"sms": "+14155550003"}))
    sms.fail("+14155550003", Throttled("429", retry_after=10))
    landline = {"sms": "+14155550004", "email": "ll@example.org"}
    ids["landline"] = await queue(ctx, await add_supporter(ctx, landline))
    sms.fail("+14155550004", InvalidRecipient("landline", code="30006"))
    ids["nowhere"] = await queue(ctx, await add_supporter(ctx, {"sms": "+14155550005"}))
    sms.fail("+14155550005", InvalidRecipient("landline", code="30006"))
    blocked = await add_supporter(ctx, {"telegram": "4242", "sms": "+14155550006"})
    ids["blocked"] = await queue(ctx, blocked)
    telegram.fail("4242", RecipientOptedOut("bot was blocked by the user", code="403"))
    return ctx, dispatcher, ids, blocked, sms, email


@pytest.mark.parametrize("batch_fails", [False, True], ids=["batch", "batch fails"])
async def test_successes_retries_fallbacks_and_an_opt_out_in_one_batch(
    make_client, clock: FakeClock, batch_fails: bool
) -> None:
    ctx, dispatcher, ids, blocked, sms, email = await mixed_batch(make_client, clock)
    commits = count_commits(ctx)
    injected: list[str] = []
    if batch_fails:
        # The batch breaks late in its transaction (its writes so far are rolled back);
        # each outcome is then stored on its own, once.
        def fail_once(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            if statement.startswith("INSERT INTO consent_events") and not injected:
                injected.append(statement)
                raise OperationalError(statement, None, Exception("disk I/O error"))

        event.listen(ctx.engine.sync_engine, "before_cursor_execute", fail_once)

    now = clock()
    assert await dispatcher.run_once() == 6
    if batch_fails:
        assert len(injected) == 1
        assert len(commits) == 1 + 6  # the claim, then one per outcome
    else:
        assert len(commits) == 2  # the claim and one batch

    sent = await load(ctx, ids["sent"])
    assert (sent.status, sent.channel) == ("sent", "sms")
    assert await outbox_of(ctx, ids["sent"]) is None
    assert await events_of(ctx, ids["sent"]) == [("sms", "sent")]

    retry = await load(ctx, ids["retry"])
    assert (retry.status, retry.channel) == ("queued", "sms")
    assert retry.error == "sms: 429 (retrying in 10 s)"
    item = await outbox_of(ctx, ids["retry"])
    assert item is not None and item.lease_owner is None
    assert (item.attempts, item.due_at) == (1, now + timedelta(seconds=10))
    assert await events_of(ctx, ids["retry"]) == []

    for name, address in (("exhausted", "ex@example.org"), ("landline", "ll@example.org")):
        message = await load(ctx, ids[name])  # both move on to email, due now
        assert (message.status, message.channel, message.address) == ("queued", "email", address)
        item = await outbox_of(ctx, ids[name])
        assert item is not None and item.lease_owner is None
        assert (item.attempts, item.due_at) == (0, now)
        assert await events_of(ctx, ids[name]) == [("sms", "failed"), ("email", "queued")]
    assert [(a.status, a.error_code) for a in await attempts_of(ctx, ids["exhausted"])] == [
        ("failed", None),
        ("failed", None),
    ]
    assert [(a.status, a.error_code) for a in await attempts_of(ctx, ids["landline"])] == [
        ("failed", "30006")
    ]

    nowhere = await load(ctx, ids["nowhere"])
    assert nowhere.status == "failed" and nowhere.error_code == "30006"
    assert (nowhere.error or "").startswith("sms: landline; no eligible channel")
    assert await outbox_of(ctx, ids["nowhere"]) is None
    # record_failure's event for the try, then the final status's
    assert await events_of(ctx, ids["nowhere"]) == [("sms", "failed"), ("sms", "failed")]

    stopped = await load(ctx, ids["blocked"])
    assert (stopped.status, stopped.channel) == ("failed", "telegram")
    assert "opted out" in (stopped.error or "")
    assert await outbox_of(ctx, ids["blocked"]) is None
    async with ctx.sessions() as session:
        supporter = await session.get(Supporter, blocked)
        assert supporter is not None and supporter.opted_out
        addresses = (
            await session.exec(
                select(SupporterAddress).where(SupporterAddress.supporter_id == blocked)
            )
        ).all()
        assert {(a.channel, a.opted_out) for a in addresses} == {("telegram", True), ("sms", False)}
        consent = (await session.exec(select(ConsentEvent))).all()
        assert [(c.supporter_id, c.action, c.channel, c.message_id) for c in consent] == [
            (blocked, "opt_out", "telegram", ids["blocked"])
        ]

    # The fallbacks go out on email; the retry when it is due; nothing else, nothing twice.
    assert await dispatcher.run_once() == 2
    clock.advance(seconds=10)
    assert await dispatcher.run_until_idle() == 1
    for name in ("sent", "retry", "exhausted", "landline"):
        assert (await load(ctx, ids[name])).status == "sent", name
    assert sorted(m.to for _, m in email.accepted) == ["ex@example.org", "ll@example.org"]
    assert sorted(m.to for _, m in sms.accepted) == ["+14155550002", "+14155550003"]


async def test_a_failure_returning_after_its_lease_was_taken_over_changes_nothing(
    make_client, clock: FakeClock
) -> None:
    sms = FakeAdapter(channels=("sms",), provider="fake-sms")
    email = FakeAdapter(channels=("email",), provider="fake-email")
    _, ctx = await with_adapters(make_client, sms, email)
    phone = "+14155550100"
    message_id = await queue(ctx, await add_supporter(ctx, {"sms": phone, "email": "a@b.org"}))
    sms.hold_before_accept = {phone}

    first = make_dispatcher(ctx, clock, owner="first")
    stalled = asyncio.create_task(first.run_once())

    async def held(n: int) -> bool:
        return sms.held == n

    await until(lambda: held(1))
    clock.advance(seconds=61)  # the first lease runs out; a second dispatcher takes the row
    second = make_dispatcher(ctx, clock, owner="second")
    taking_over = asyncio.create_task(second.run_once())
    await until(lambda: held(2))
    # The first send is answered first, and with a permanent error (a fallback, were its
    # claim still current); the second is accepted.
    sms.fail(phone, InvalidRecipient("landline", code="30006"))
    sms.release.set()
    assert await asyncio.wait_for(asyncio.gather(stalled, taking_over), 10) == [1, 1]

    message = await load(ctx, message_id)
    assert (message.status, message.channel) == ("sent", "sms")
    assert message.provider_message_id == sms.accepted[0][0]
    assert [(a.status, a.error) for a in await attempts_of(ctx, message_id)] == [
        ("failed", INTERRUPTED),
        ("sent", None),
    ]
    assert await events_of(ctx, message_id) == [("sms", "sent")]
    assert await outbox_of(ctx, message_id) is None
    assert await second.run_once() == 0
    assert email.calls == []
    async with ctx.sessions() as session:
        assert (await session.exec(select(col(ConsentEvent.id)))).all() == []
