"""Rows a dispatcher claimed before their announcement was cancelled, still waiting for
their turn (a send slot, a rate-limit token), are given back instead of sent: at once when
the cancel came through this process, and within a check interval when it came through
another (another `serve`, or `serve` while a `worker` sends)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from tests.conftest import FakeClock
from tests.gateway.seed import messages_of
from tests.gateway.test_announcement_cancel import (
    PHONES,
    World,
    announce,
    cancel,
    start_run_with_nudges,
    world,
)
from tests.routing.fake_adapter import make_dispatcher, until
from tests.routing.fake_channel import outbound

__all__ = ["world"]  # the fixture, shared with the cancel API tests


async def statuses(world: World, announcement_id: int) -> dict[str, tuple[str, str | None]]:
    return {
        m.address or "": (m.status, m.error)
        for m in await messages_of(world.ctx, announcement_id)
        if m.address in PHONES
    }


async def only_the_first_was_sent(world: World, announcement_id: int) -> None:
    found = await statuses(world, announcement_id)
    assert found[PHONES[0]][0] == "sent"
    assert [found[p] for p in PHONES[1:]] == [("skipped", "cancelled")] * 3


def first_at_provider(world: World) -> Callable[[], Awaitable[bool]]:
    async def held() -> bool:  # one send at a time: the rest wait for the slot
        return world.sms.held == 1

    return held


async def test_claimed_rows_waiting_their_turn_are_not_sent_after_a_cancel(
    world: World, clock: FakeClock
) -> None:
    sms, ctx = world.sms, world.ctx
    announcement_id = await announce(world)
    sms.hold_before_accept = set(PHONES)
    # One send at a time: the first is at the provider, the other three wait for the slot.
    dispatcher = make_dispatcher(ctx, clock, concurrency=1)
    in_flight = asyncio.create_task(dispatcher.run_once(limit=10))
    await until(first_at_provider(world))
    answer = await cancel(world, announcement_id)
    assert answer.status_code == 200, answer.text
    sms.release.set()
    assert await asyncio.wait_for(in_flight, 10) == 4
    assert [m.to for m in sms.calls] == PHONES[:1]
    await dispatcher.run_until_idle()  # the given-back rows: skipped when claimed
    assert [m.to for m in sms.calls] == PHONES[:1]
    await only_the_first_was_sent(world, announcement_id)


async def test_a_cancel_made_by_another_process_is_learnt_before_the_turn(
    world: World, clock: FakeClock
) -> None:
    sms, ctx = world.sms, world.ctx
    announcement_id = await announce(world)
    sms.hold_before_accept = set(PHONES)
    dispatcher = make_dispatcher(ctx, clock, concurrency=1)
    await dispatcher.start()
    try:
        await until(first_at_provider(world))
        answer = await cancel(world, announcement_id)
        assert answer.status_code == 200, answer.text
        # As if the cancel had reached another process: this one only has the database.
        ctx.cancelled_announcements.clear()
        clock.advance(seconds=2)  # past the dispatcher's check interval
        dispatcher.wake()

        async def learnt() -> bool:
            return announcement_id in ctx.cancelled_announcements

        await until(learnt)
        sms.release.set()

        async def settled() -> bool:
            found = await statuses(world, announcement_id)
            return all(status != "queued" for status, _ in found.values())

        await until(settled)
    finally:
        await dispatcher.stop()
    assert [m.to for m in sms.calls] == PHONES[:1]
    await only_the_first_was_sent(world, announcement_id)


async def test_a_check_in_run_s_claimed_nudges_are_given_back_too(
    world: World, clock: FakeClock
) -> None:
    """Nudges carry no announcement id: they are given back by their run's."""
    sms, ctx = world.sms, world.ctx
    announcement_id = await start_run_with_nudges(world, clock)
    sms.hold_before_accept = set(PHONES)
    dispatcher = make_dispatcher(ctx, clock, concurrency=1)
    in_flight = asyncio.create_task(dispatcher.run_once(limit=10))
    await until(first_at_provider(world))  # the first nudge; the other seven rows wait
    answer = await cancel(world, announcement_id)
    assert answer.status_code == 200, answer.text
    sms.release.set()
    assert await asyncio.wait_for(in_flight, 10) == 8
    assert [m.body for m in sms.calls] == ["Hi N0, we miss you!"]
    await dispatcher.run_until_idle()  # the given-back rows: skipped when claimed
    assert len(sms.calls) == 1
    nudges = {m.address: (m.status, m.error) for m in await outbound(ctx, "nudge")}
    assert nudges[PHONES[0]][0] == "sent"
    assert [nudges[p] for p in PHONES[1:]] == [("skipped", "cancelled")] * 3
    prompts = await statuses(world, announcement_id)
    assert list(prompts.values()) == [("skipped", "cancelled")] * 4
