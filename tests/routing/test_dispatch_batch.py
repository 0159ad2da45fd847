"""The batched dispatcher: a chunk's attempts are committed with its claim, outcomes are
committed in batches, and everything one message at a time did still holds."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections import Counter
from datetime import timedelta

import httpx
from sqlmodel import col, select

from channels.base import InvalidRecipient, ProviderUnavailable
from channels.twilio.fake import FakeTwilio
from routing.context import AppContext
from routing.dispatch.outcome import INTERRUPTED
from storage.models import Message, OutboxItem, PendingStatus, Supporter
from tests.channels.twilio_case import ACCOUNT_SID, AUTH_TOKEN, SETTINGS
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
    unrecorded,
    until,
    with_adapters,
)


async def test_crash_between_send_and_record_resends_only_the_unrecorded(
    make_client, clock: FakeClock
) -> None:
    sms = FakeAdapter(channels=("sms",), provider="fake-sms")
    _, ctx = await with_adapters(make_client, sms)
    phones = [f"+1415555{n:04d}" for n in range(30)]
    ids = [await queue(ctx, await add_supporter(ctx, {"sms": p}, name=p), p) for p in phones]
    accepted_not_recorded = set(phones[::3])  # 10 of 30
    sms.hold_after_accept = set(accepted_not_recorded)

    first = make_dispatcher(ctx, clock, owner="first", concurrency=30)
    crashed = asyncio.create_task(first.run_once())

    async def settled() -> bool:
        sent = await load_statuses(ctx, ids)
        return sms.held == 10 and sent["sent"] == 20

    await until(settled)
    # Every attempt was stored with the claim, before any send: the 10 in flight are
    # there, without a provider id.
    assert await unrecorded(ctx) == 10
    crashed.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await crashed
    sms.hold_after_accept.clear()

    second = make_dispatcher(ctx, clock, owner="second", concurrency=30)
    assert await second.run_once() == 0  # the leases still hold
    clock.advance(seconds=61)
    assert await second.run_once() == 10

    assert (await load_statuses(ctx, ids)) == {"sent": 30}
    for phone, message_id in zip(phones, ids, strict=True):
        attempts = await attempts_of(ctx, message_id)
        if phone in accepted_not_recorded:
            assert len(sms.sent_to(phone)) == 2
            assert [(a.status, a.error) for a in attempts] == [
                ("failed", INTERRUPTED),
                ("sent", None),
            ]
        else:
            assert len(sms.sent_to(phone)) == 1
            assert [a.status for a in attempts] == ["sent"]
        assert (await events_of(ctx, message_id)) == [("sms", "sent")]
        message = await load(ctx, message_id)
        assert message.provider_message_id == attempts[-1].provider_message_id
    async with ctx.sessions() as session:
        assert (await session.exec(select(col(OutboxItem.id)))).all() == []


async def load_statuses(ctx: AppContext, ids: list[int]) -> Counter[str]:
    async with ctx.sessions() as session:
        rows = await session.exec(select(Message.status).where(col(Message.id).in_(ids)))
        return Counter(rows.all())


def twilio_sid(n: int) -> str:
    """The sid FakeTwilio gives its n-th accepted message."""
    return "SM" + hashlib.sha256(f"{ACCOUNT_SID}:{n}".encode()).hexdigest()[:32]


async def test_callbacks_that_beat_the_send_result_are_applied_in_the_batch(
    make_client, clock: FakeClock
) -> None:
    fake = FakeTwilio(ACCOUNT_SID, AUTH_TOKEN)
    client = await make_client(
        transport=httpx.MockTransport(fake), **{**SETTINGS, "twilio_rate_per_second": 100}
    )
    ctx: AppContext = client.ctx
    ids = []
    for n in range(6):
        sid = await add_supporter(ctx, {"sms": f"+1415555{n:04d}"}, name=f"S{n}")
        ids.append(await queue(ctx, sid, f"m{n}"))
    early = {twilio_sid(2): "delivered", twilio_sid(5): "failed"}
    async with ctx.sessions() as session:
        for provider_id, status in early.items():
            session.add(
                PendingStatus(
                    channel="sms",
                    provider_message_id=provider_id,
                    status=status,
                    error="carrier said no" if status == "failed" else None,
                    error_code="30008" if status == "failed" else None,
                    created_at=clock(),
                )
            )
        await session.commit()

    start = clock()
    dispatcher = make_dispatcher(ctx, clock, concurrency=6)
    assert await dispatcher.run_once() == 6
    assert len(fake.sent) == 6
    assert dispatcher.recorder.batches < 6  # successes share transactions

    seen: Counter[str] = Counter()
    for message_id in ids:
        message = await load(ctx, message_id)
        expected = early.get(message.provider_message_id or "", "sent")
        seen[expected] += 1
        assert message.status == expected, (message_id, message.provider_message_id)
        history = [status for _, status in await events_of(ctx, message_id)]
        assert history == (["sent"] if expected == "sent" else ["sent", expected])
        [attempt] = await attempts_of(ctx, message_id)
        assert attempt.status == expected
        assert attempt.provider_message_id == message.provider_message_id
    assert seen == {"sent": 4, "delivered": 1, "failed": 1}
    async with ctx.sessions() as session:
        assert (await session.exec(select(PendingStatus))).all() == []
        supporters = (await session.exec(select(Supporter))).all()
        messages = (await session.exec(select(Message).where(col(Message.id).in_(ids)))).all()
    # Each supporter's last outbound time is its send's batch time, as its message's sent_at.
    assert {s.id: s.last_outbound_at for s in supporters} == {
        m.supporter_id: m.sent_at for m in messages
    }
    assert all(m.sent_at is not None and start <= m.sent_at <= clock() for m in messages)


async def test_failures_among_successes_in_one_batch(make_client, clock: FakeClock) -> None:
    sms = FakeAdapter(channels=("sms",), provider="fake-sms")
    email = FakeAdapter(channels=("email",), provider="fake-email")
    _, ctx = await with_adapters(make_client, sms, email, max_attempts=3)
    phones = [f"+1415555{n:04d}" for n in range(8)]
    ids = []
    for n, phone in enumerate(phones):
        sid = await add_supporter(ctx, {"sms": phone, "email": f"s{n}@example.org"}, name=phone)
        ids.append(await queue(ctx, sid, f"m{n}"))
    retry, fallback = ids[2], ids[5]
    sms.fail(phones[2], ProviderUnavailable("503"))
    sms.fail(phones[5], InvalidRecipient("landline", code="30006"))
    dispatcher = make_dispatcher(ctx, clock, concurrency=8)

    assert await dispatcher.run_once() == 8
    for message_id in ids:
        message = await load(ctx, message_id)
        if message_id == retry:
            assert (message.status, message.channel) == ("queued", "sms")
            item = await outbox_of(ctx, message_id)
            assert item is not None and item.attempts == 1 and item.lease_owner is None
            assert item.due_at == clock() + timedelta(seconds=2)
            assert [a.status for a in await attempts_of(ctx, message_id)] == ["failed"]
        elif message_id == fallback:
            assert (message.status, message.channel) == ("queued", "email")
            assert await events_of(ctx, message_id) == [("sms", "failed"), ("email", "queued")]
        else:
            assert (message.status, message.channel) == ("sent", "sms")
            assert await outbox_of(ctx, message_id) is None
            assert await events_of(ctx, message_id) == [("sms", "sent")]

    assert await dispatcher.run_once() == 1  # the fallback, on email
    clock.advance(seconds=2)
    assert await dispatcher.run_once() == 1  # the retry
    for message_id in ids:
        assert (await load(ctx, message_id)).status == "sent"
    assert [(a.channel, a.status, a.error_code) for a in await attempts_of(ctx, fallback)] == [
        ("sms", "failed", "30006"),
        ("email", "sent", None),
    ]
    assert Counter(m.to for m in sms.calls) == {p: (2 if p == phones[2] else 1) for p in phones}
    assert [m.message_id for _, m in email.accepted] == [fallback]
