"""Recurring check-ins with the FakeClock: when they are due, running once, nudges."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import update
from sqlmodel import col, select

from gateway.checkin_scheduler import CheckinScheduler
from routing.context import AppContext
from routing.organizing.checkin_schedule import latest_occurrence
from routing.organizing.checkins import claim, inactive_supporters, run_due_checkins
from storage.models import (
    Announcement,
    Checkin,
    OutboxItem,
    Supporter,
    SupporterAddress,
    Team,
    TeamMembership,
)
from tests.conftest import FakeClock
from tests.routing.fake_channel import FakeChannel, outbound, say

MakeClient = Callable[..., Awaitable[httpx.AsyncClient]]
NY = ZoneInfo("America/New_York")
# The FakeClock starts on Wednesday 2026-03-04 15:00 UTC (10:00 in New York, EST).
WEDNESDAY = 2


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("weekday", "local_time", "now", "expected"),
    [
        # Wednesday 18:00 EST is 23:00 UTC; before it, the occurrence is a week earlier.
        (WEDNESDAY, "18:00", utc(2026, 3, 4, 22, 59), utc(2026, 2, 25, 23, 0)),
        (WEDNESDAY, "18:00", utc(2026, 3, 4, 23, 0), utc(2026, 3, 4, 23, 0)),
        # After the switch to daylight time (8 March) it is 22:00 UTC.
        (WEDNESDAY, "18:00", utc(2026, 3, 11, 22, 30), utc(2026, 3, 11, 22, 0)),
        # Monday 09:00 local seen from Wednesday: this week's Monday.
        (0, "09:00", utc(2026, 3, 4, 15, 0), utc(2026, 3, 2, 14, 0)),
        # Late evening local is already the next day in UTC.
        (WEDNESDAY, "22:30", utc(2026, 3, 5, 3, 29), utc(2026, 2, 26, 3, 30)),
        (WEDNESDAY, "22:30", utc(2026, 3, 5, 3, 30), utc(2026, 3, 5, 3, 30)),
    ],
)
def test_latest_occurrence_in_the_org_timezone(
    weekday: int, local_time: str, now: datetime, expected: datetime
) -> None:
    assert latest_occurrence(weekday, local_time, NY, now) == expected


async def setup_team(
    make_client: MakeClient, clock: FakeClock, **checkin: Any
) -> tuple[AppContext, list[Supporter], Checkin]:
    """A team of three (Cleo opted out) and one check-in created now."""
    client = await make_client(default_timezone="America/New_York")
    ctx: AppContext = client.ctx  # type: ignore[attr-defined]
    ctx.registry.add(FakeChannel())
    now = clock()
    async with ctx.sessions() as session:
        team = Team(name="Canvassing", created_at=now)
        session.add(team)
        await session.flush()
        assert team.id is not None
        members = []
        for i, name in enumerate(["Ada", "Bea", "Cleo"]):
            supporter = Supporter(
                name=name, opted_out=name == "Cleo", created_at=now, updated_at=now
            )
            session.add(supporter)
            await session.flush()
            assert supporter.id is not None
            session.add(
                SupporterAddress(supporter_id=supporter.id, channel="telegram", address=f"90{i}")
            )
            session.add(TeamMembership(supporter_id=supporter.id, team_id=team.id))
            members.append(supporter)
        values: dict[str, Any] = {
            "weekday": WEDNESDAY,
            "local_time": "18:00",
            "prompt": "How did your week go?",
        }
        values.update(checkin)
        row = Checkin(team_id=team.id, created_at=now, **values)
        session.add(row)
        await session.commit()
    return ctx, members, row


async def prompts(ctx: AppContext) -> list[tuple[int, str, str]]:
    """The check-in prompts queued for sending (opted-out members' are `skipped`)."""
    messages = await outbound(ctx, "checkin")
    return [(m.supporter_id, m.body, m.status) for m in messages if m.status == "queued"]


async def test_due_at_the_local_time_and_runs_once(
    make_client: MakeClient, clock: FakeClock
) -> None:
    ctx, (ada, bea, cleo), checkin = await setup_team(make_client, clock)
    clock.set(utc(2026, 3, 4, 22, 59))
    assert (await run_due_checkins(ctx)).runs == []
    assert await prompts(ctx) == []

    clock.set(utc(2026, 3, 4, 23, 0))
    [run] = (await run_due_checkins(ctx)).runs
    assert (run.checkin_id, run.prompts) == (checkin.id, 2)
    expected = [
        (ada.id, "How did your week go?", "queued"),
        (bea.id, "How did your week go?", "queued"),
    ]
    assert await prompts(ctx) == expected
    skipped = [(m.supporter_id, m.status, m.error) for m in await outbound(ctx, "checkin")]
    assert (cleo.id, "skipped", "opted out") in skipped
    async with ctx.sessions() as session:
        announcement = await session.get(Announcement, run.announcement_id)
    assert announcement is not None
    assert (announcement.kind, announcement.recipients) == ("checkin", 3)
    async with ctx.sessions() as session:
        items = (await session.exec(select(OutboxItem))).all()
        stored = await session.get(Checkin, checkin.id)
    assert sorted(item.priority for item in items) == [1, 1]
    assert stored is not None and stored.last_run_at == utc(2026, 3, 4, 23, 0)

    clock.advance(minutes=1)
    assert (await run_due_checkins(ctx)).runs == []
    clock.set(utc(2026, 3, 11, 21, 59))  # next week, daylight time: 18:00 is 22:00 UTC
    assert (await run_due_checkins(ctx)).runs == []
    clock.set(utc(2026, 3, 11, 22, 0))
    assert len((await run_due_checkins(ctx)).runs) == 1
    assert len(await prompts(ctx)) == 4


async def test_a_checkin_created_after_this_weeks_time_waits_for_next_week(
    make_client: MakeClient, clock: FakeClock
) -> None:
    ctx, _, _ = await setup_team(make_client, clock, weekday=0, local_time="09:00")
    assert (await run_due_checkins(ctx)).runs == []  # Monday 09:00 was before it existed


async def test_missed_weeks_run_once(make_client: MakeClient, clock: FakeClock) -> None:
    ctx, _, _ = await setup_team(make_client, clock)
    clock.set(utc(2026, 3, 26, 12, 0))  # three Wednesdays passed while the server was down
    assert len((await run_due_checkins(ctx)).runs) == 1
    assert len(await prompts(ctx)) == 2
    assert (await run_due_checkins(ctx)).runs == []
    assert len(await prompts(ctx)) == 2


async def test_two_schedulers_at_once_send_one_prompt(
    make_client: MakeClient, clock: FakeClock
) -> None:
    ctx, _, _ = await setup_team(make_client, clock)
    clock.set(utc(2026, 3, 4, 23, 0))
    reports = await asyncio.gather(run_due_checkins(ctx), run_due_checkins(ctx))
    assert sum(len(r.runs) for r in reports) == 1
    assert len(await prompts(ctx)) == 2


async def test_a_claim_fails_once_the_schedule_it_was_due_by_changed(
    make_client: MakeClient, clock: FakeClock
) -> None:
    """A scheduler that found the check-in due, then lost the race to a PATCH of its
    timezone (no run yet, so `last_run_at` is unchanged), must not run it by the old one."""
    ctx, _, checkin = await setup_team(make_client, clock)
    clock.set(utc(2026, 3, 4, 23, 0))  # due in New York
    async with ctx.sessions() as session:
        seen = await session.get(Checkin, checkin.id)
    assert seen is not None
    async with ctx.sessions() as session:
        await session.exec(  # type: ignore[call-overload]
            update(Checkin)
            .where(col(Checkin.id) == checkin.id)
            .values(timezone="America/Los_Angeles")
        )
        await session.commit()
    async with ctx.sessions() as session:
        assert not await claim(session, seen, clock())
        await session.rollback()
        fresh = await session.get(Checkin, checkin.id)
        assert fresh is not None and fresh.timezone == "America/Los_Angeles"
        assert await claim(session, fresh, clock())
        await session.rollback()  # only trying: nothing claimed
    assert (await run_due_checkins(ctx)).runs == []  # 18:00 in Los Angeles is still ahead


async def test_inactive_members_are_nudged_once_per_lull(
    make_client: MakeClient, clock: FakeClock
) -> None:
    ctx, (ada, bea, cleo), _ = await setup_team(
        make_client, clock, inactive_days=14, nudge_text="Hi {name}, we miss you!"
    )
    # Ada wrote 20 days from now, Bea stays quiet from the start (added today).
    clock.advance(days=1)
    await say(ctx, "Count me in", "telegram", "900")
    clock.set(utc(2026, 3, 18, 22, 0))  # 14 days after creation: Bea inactive, Ada 13 days
    [run] = (await run_due_checkins(ctx)).runs
    assert (run.prompts, run.nudges) == (2, 1)
    nudges = [(m.supporter_id, m.body) for m in await outbound(ctx, "nudge")]
    assert nudges == [(bea.id, "Hi Bea, we miss you!")]

    clock.set(utc(2026, 3, 25, 22, 0))  # a week on: both quiet, Bea already nudged
    [run] = (await run_due_checkins(ctx)).runs
    assert run.nudges == 1
    nudges = [(m.supporter_id, m.body) for m in await outbound(ctx, "nudge")]
    assert nudges == [(bea.id, "Hi Bea, we miss you!"), (ada.id, "Hi Ada, we miss you!")]

    await say(ctx, "back again", "telegram", "901")  # Bea writes: a new lull starts later
    clock.set(utc(2026, 4, 1, 22, 0))
    assert (await run_due_checkins(ctx)).runs[0].nudges == 0
    clock.set(utc(2026, 4, 8, 22, 0))
    assert (await run_due_checkins(ctx)).runs[0].nudges == 1  # Bea quiet 14 days again
    assert [m.supporter_id for m in await outbound(ctx, "nudge")] == [bea.id, ada.id, bea.id]
    assert cleo.id not in {m.supporter_id for m in await outbound(ctx) if m.status == "queued"}


async def test_inactive_supporters_list(make_client: MakeClient, clock: FakeClock) -> None:
    ctx, (ada, bea, _cleo), _ = await setup_team(make_client, clock)
    clock.advance(days=3)
    await say(ctx, "hi", "telegram", "900")
    clock.advance(days=12)
    async with ctx.sessions() as session:
        found = await inactive_supporters(session, clock(), 14)
        assert [(s.supporter_id, s.days_inactive, s.team) for s in found] == [
            (bea.id, 15, "Canvassing")
        ]
        found = await inactive_supporters(session, clock(), 10)
    assert [(s.supporter_id, s.days_inactive) for s in found] == [(bea.id, 15), (ada.id, 12)]
    assert found[1].last_inbound_at == utc(2026, 3, 7, 15, 0)


async def test_scheduler_runs_rounds_and_stops(make_client: MakeClient, clock: FakeClock) -> None:
    ctx, _, _ = await setup_team(make_client, clock)
    clock.set(utc(2026, 3, 4, 23, 0))
    scheduler = CheckinScheduler(ctx, interval=3600)
    await scheduler.start()
    # The first round starts at once; wait for it (bounded), then stop mid-interval.
    await asyncio.wait_for(scheduler.round_finished.wait(), 10)
    async with asyncio.timeout(10):
        await scheduler.stop()
    assert scheduler.rounds == 1
    assert len(await prompts(ctx)) == 2
