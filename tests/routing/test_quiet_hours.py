"""Quiet hours: pure rules with an injected now, and the dispatcher holding announcements."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from routing.outbound.quiet_hours import hold_until
from tests.conftest import FakeClock
from tests.routing.fake_adapter import (
    FakeAdapter,
    add_supporter,
    load,
    make_dispatcher,
    outbox_of,
    queue,
    with_adapters,
)

NY = "America/New_York"  # UTC-5 in early March 2026 (DST starts March 8)


def held(now: datetime, kind: str = "announcement", priority: int = 1, tz: str | None = NY):
    return hold_until(
        now=now,
        kind=kind,
        priority=priority,
        timezone=tz,
        default_timezone="UTC",
        quiet_start="21:00",
        quiet_end="08:00",
    )


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (datetime(2026, 3, 4, 15, 0, tzinfo=UTC), None),  # 10:00 local
        (datetime(2026, 3, 4, 13, 0, tzinfo=UTC), None),  # 08:00 local: window opens
        (datetime(2026, 3, 5, 1, 59, tzinfo=UTC), None),  # 20:59 local
        (datetime(2026, 3, 5, 2, 0, tzinfo=UTC), datetime(2026, 3, 5, 13, 0, tzinfo=UTC)),
        (datetime(2026, 3, 5, 6, 0, tzinfo=UTC), datetime(2026, 3, 5, 13, 0, tzinfo=UTC)),
        # 07:59 local on the morning DST starts: 08:00 EDT is 12:00 UTC.
        (datetime(2026, 3, 8, 11, 59, tzinfo=UTC), datetime(2026, 3, 8, 12, 0, tzinfo=UTC)),
    ],
)
def test_announcements_wait_for_the_local_window(now: datetime, expected: datetime | None) -> None:
    assert held(now) == expected


def test_one_on_ones_and_replies_are_never_held() -> None:
    night = datetime(2026, 3, 5, 4, 0, tzinfo=UTC)  # 23:00 local
    assert held(night, kind="one_on_one", priority=1) is None
    assert held(night, kind="auto_reply", priority=0) is None
    assert held(night, kind="poll", priority=0) is not None
    assert held(night, kind="checkin", priority=0) is not None


def test_unknown_or_missing_timezone_uses_the_default() -> None:
    at = datetime(2026, 3, 4, 22, 0, tzinfo=UTC)
    assert held(at, tz=None) == datetime(2026, 3, 5, 8, 0, tzinfo=UTC)
    assert held(at, tz="Mars/Olympus_Mons") == datetime(2026, 3, 5, 8, 0, tzinfo=UTC)


async def test_dispatcher_holds_announcements_not_one_on_ones(
    make_client, clock: FakeClock
) -> None:
    clock.set(datetime(2026, 3, 5, 3, 0, tzinfo=UTC))  # 22:00 in New York, 03:00 in UTC
    sms = FakeAdapter(channels=("sms",), provider="fake-sms")
    _, ctx = await with_adapters(make_client, sms)
    ny = await add_supporter(ctx, {"sms": "+14155550100"}, timezone=NY)
    announcement = await queue(ctx, ny, "rally", kind="announcement", priority=1)
    reply = await queue(ctx, ny, "sure!", kind="one_on_one", priority=0)
    dispatcher = make_dispatcher(ctx, clock)

    assert await dispatcher.run_once() == 2
    assert [m.message_id for m in sms.calls] == [reply]
    item = await outbox_of(ctx, announcement)
    assert item is not None
    assert item.due_at == datetime(2026, 3, 5, 13, 0, tzinfo=UTC)
    assert item.attempts == 0 and item.lease_owner is None
    assert (await load(ctx, announcement)).status == "queued"

    clock.set(datetime(2026, 3, 5, 12, 59, tzinfo=UTC))
    assert await dispatcher.run_once() == 0
    clock.set(datetime(2026, 3, 5, 13, 0, tzinfo=UTC))
    assert await dispatcher.run_once() == 1
    assert (await load(ctx, announcement)).status == "sent"
