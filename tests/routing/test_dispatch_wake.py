"""Work queued in this process wakes the in-process dispatcher once it is committed: the
dispatcher here polls only every ten minutes, so whatever it sends within the tests'
bounded waits it sent because it was woken."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

import httpx
import pytest
from sqlmodel import select

from gateway.background import background_services
from routing.context import AppContext
from routing.dispatch.dispatcher import Dispatcher
from routing.outbound.queue import queue_message
from storage.models import Announcement, OutboxItem, Supporter
from tests.conftest import FakeClock, bearer, new_key
from tests.routing.fake_adapter import FakeAdapter, add_supporter, load, until

API = "/api/v1"
PHONE = "+14155550100"


@pytest.fixture
async def served(
    make_client: Callable[..., Awaitable[httpx.AsyncClient]],
) -> AsyncIterator[tuple[httpx.AsyncClient, FakeAdapter, Dispatcher]]:
    """An admin client, an sms fake, and `serve`'s dispatcher polling every 10 minutes,
    started and idle (its first claim found nothing)."""
    client = await make_client(dispatch_poll_seconds=600)
    ctx: AppContext = client.ctx  # type: ignore[attr-defined]
    sms = FakeAdapter(channels=("sms",), provider="fake-sms")
    ctx.registry.add(sms)
    client.headers.update(bearer(await new_key(ctx)))
    [dispatcher] = [s for s in background_services(ctx) if isinstance(s, Dispatcher)]
    assert dispatcher.poll_seconds == 600
    await dispatcher.start()
    try:
        await until(claims(dispatcher, 1))
        # No await between a claim and the idle wait: it is waiting now, for 10 minutes.
        assert dispatcher.rounds == 1
        yield client, sms, dispatcher
    finally:
        await dispatcher.stop()


def claims(dispatcher: Dispatcher, rounds: int) -> Callable[[], Awaitable[bool]]:
    async def made() -> bool:
        return dispatcher.rounds >= rounds

    return made


async def test_a_one_on_one_posted_through_the_api_is_sent_without_waiting_for_a_poll(
    served: tuple[httpx.AsyncClient, FakeAdapter, Dispatcher],
) -> None:
    client, sms, _ = served
    created = await client.post(
        f"{API}/supporters",
        json={"name": "Amina", "addresses": [{"channel": "sms", "address": PHONE}]},
    )
    supporter_id = created.json()["id"]
    posted = await client.post(
        f"{API}/supporters/{supporter_id}/messages", json={"body": "See you Saturday"}
    )
    assert posted.status_code == 202, posted.text
    message_id = posted.json()["id"]
    ctx: AppContext = client.ctx  # type: ignore[attr-defined]

    async def sent() -> bool:
        return (await load(ctx, message_id)).status == "sent"

    await until(sent)
    assert [m.body for m in sms.sent_to(PHONE)] == ["See you Saturday"]


async def test_a_wake_with_nothing_due_claims_once_and_idles(
    served: tuple[httpx.AsyncClient, FakeAdapter, Dispatcher], clock: FakeClock
) -> None:
    client, sms, dispatcher = served
    ctx: AppContext = client.ctx  # type: ignore[attr-defined]
    await add_supporter(ctx, {"sms": PHONE})
    send_at = clock() + timedelta(days=1)
    posted = await client.post(
        f"{API}/announcements",
        json={"body": "Rally tomorrow", "audience": {"all": True}, "send_at": send_at.isoformat()},
    )
    assert posted.status_code in (201, 202), posted.text
    announcement_id = posted.json()["id"]

    async def fanned_out() -> bool:
        async with ctx.sessions() as session:
            announcement = await session.get(Announcement, announcement_id)
            assert announcement is not None
            return announcement.state == "fanned_out"

    await until(fanned_out)
    # The fan-out batch's commit woke the dispatcher: one claim, nothing due yet.
    await until(claims(dispatcher, 2))
    for _ in range(20):  # database round trips: a spinning dispatcher would claim meanwhile
        async with ctx.sessions() as session:
            assert len((await session.exec(select(OutboxItem))).all()) == 1
    assert dispatcher.rounds == 2
    assert sms.calls == []


async def test_the_signal_comes_after_the_commit_and_not_for_a_rollback(
    make_client: Callable[..., Awaitable[httpx.AsyncClient]],
) -> None:
    client = await make_client()
    ctx: AppContext = client.ctx  # type: ignore[attr-defined]
    ctx.registry.add(FakeAdapter(channels=("sms",)))
    supporter_id = await add_supporter(ctx, {"sms": PHONE})
    told: list[int] = []

    stop = ctx.outbox_signal.subscribe(lambda: told.append(len(told) + 1))
    async with ctx.sessions() as session:
        supporter = await session.get(Supporter, supporter_id)
        assert supporter is not None
        async with session.begin_nested():  # a SAVEPOINT released is not a commit
            await queue_message(session, ctx, supporter, "one")
        await queue_message(session, ctx, supporter, "two")
        await session.flush()
        assert told == []
        await session.commit()
        assert told == [1]  # one signal for the transaction, after it
        await queue_message(session, ctx, supporter, "three")
        await session.flush()
        await session.rollback()
        await session.commit()
        assert told == [1]  # rolled back: nothing to wake for
    stop()
    async with ctx.sessions() as session:
        supporter = await session.get(Supporter, supporter_id)
        assert supporter is not None
        await queue_message(session, ctx, supporter, "four")
        await session.commit()
    assert told == [1]  # unsubscribed
