"""The spool's deadlines: a group commit's future not done when its deadline passes fails
with `Late` (the request is then spooled); one done in time keeps its result."""

from __future__ import annotations

import asyncio

import pytest

from routing.inbound.deadlines import Deadlines, Late


async def _turns(until: asyncio.Future[object], turns: int = 20) -> None:
    """Let the loop run until `until` is done (bounded: a few turns of the loop)."""
    for _ in range(turns):
        if until.done():
            return
        await asyncio.sleep(0)


async def test_a_future_not_done_by_its_deadline_fails_with_late() -> None:
    loop = asyncio.get_running_loop()
    deadlines = Deadlines(0.0)  # due at once: the timer runs on the loop's next turns
    late: asyncio.Future[object] = loop.create_future()
    in_time: asyncio.Future[object] = loop.create_future()
    deadlines.watch(late)
    deadlines.watch(in_time)
    in_time.set_result("committed")
    await _turns(late)
    with pytest.raises(Late):
        late.result()
    assert in_time.result() == "committed"


async def test_futures_before_their_deadline_are_left_alone() -> None:
    loop = asyncio.get_running_loop()
    deadlines = Deadlines(3600.0)
    waiting: asyncio.Future[object] = loop.create_future()
    deadlines.watch(waiting)
    await _turns(waiting)
    assert not waiting.done()


async def test_closed_deadlines_fail_nothing() -> None:
    """After `close` (the spool's shutdown) even a due future is left alone: the timer is
    cancelled and nothing is watched any more."""
    loop = asyncio.get_running_loop()
    deadlines = Deadlines(0.0)  # due at once, as in the first test
    waiting: asyncio.Future[object] = loop.create_future()
    deadlines.watch(waiting)
    deadlines.close()
    await _turns(waiting)
    assert not waiting.done()
