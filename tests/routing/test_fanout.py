"""Fan-out of large audiences: batches, exactly one outbox row per reachable supporter,
resumable from the cursor without duplicates, safe with two runners at once."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from gateway.api.announcement_create import INLINE_LIMIT
from routing.context import AppContext
from routing.outbound import fanout_sql
from routing.outbound.fanout import FanoutPlan, fan_out, fan_out_batch, resume_pending_fanouts
from storage.models import Announcement, Message, OutboxItem
from tests.gateway.seed import bulk_members, count, make_team
from tests.routing.fake_adapter import FakeAdapter

API = "/api/v1"
N = 5_000


async def _announcement(ctx: AppContext, team_id: int) -> int:
    async with ctx.sessions() as session:
        announcement = Announcement(
            body="Phone bank tonight", audience={"teams": [team_id]}, created_at=ctx.clock()
        )
        session.add(announcement)
        await session.commit()
        assert announcement.id is not None
        return announcement.id


async def _state(ctx: AppContext, announcement_id: int) -> Announcement:
    async with ctx.sessions() as session:
        found = await session.get(Announcement, announcement_id)
        assert found is not None
        return found


async def _assert_exactly_once(
    ctx: AppContext, announcement_id: int, expected: int, queued: int | None = None
) -> None:
    """One message per member of the `expected`, and an outbox row for the `queued`."""
    async with ctx.sessions() as session:
        per_supporter = (
            await session.execute(
                select(col(Message.supporter_id), func.count())
                .where(col(Message.announcement_id) == announcement_id)
                .group_by(col(Message.supporter_id))
            )
        ).all()
        outbox = (
            await session.execute(
                select(func.count(), func.count(func.distinct(col(OutboxItem.message_id))))
                .select_from(OutboxItem)
                .join(Message, col(Message.id) == col(OutboxItem.message_id))
                .where(col(Message.announcement_id) == announcement_id)
            )
        ).one()
    assert len(per_supporter) == expected
    assert all(n == 1 for _, n in per_supporter)
    queued = expected if queued is None else queued
    assert tuple(outbox) == (queued, queued)


async def test_five_thousand_fan_out_in_the_background(client: httpx.AsyncClient) -> None:
    ctx: AppContext = client.ctx  # type: ignore[attr-defined]
    ctx.registry.add(FakeAdapter(channels=("sms",)))
    team = await make_team(ctx, "Everyone")
    await bulk_members(ctx, N, team_id=team)
    assert N > INLINE_LIMIT  # so the request answers before the fan-out is done
    answer = await client.post(
        f"{API}/announcements", json={"body": "Phone bank tonight", "audience": {"teams": [team]}}
    )
    assert answer.status_code == 202
    assert answer.json()["recipients"] == N and answer.json()["state"] == "pending"
    await asyncio.wait_for(asyncio.gather(*ctx.fanouts.values()), timeout=60)
    await _assert_exactly_once(ctx, answer.json()["id"], N)
    report = (await client.get(f"{API}/announcements/{answer.json()['id']}")).json()
    assert report["state"] == "fanned_out" and report["recipients"] == N
    assert report["counts"] == {"queued": N} and report["segments"] == N


async def test_resumed_fan_out_does_not_duplicate(client: httpx.AsyncClient) -> None:
    ctx: AppContext = client.ctx  # type: ignore[attr-defined]
    ctx.registry.add(FakeAdapter(channels=("sms",)))
    team = await make_team(ctx, "Everyone")
    await bulk_members(ctx, N, team_id=team, opted_out_every=10)
    announcement_id = await _announcement(ctx, team)
    plan = FanoutPlan.of(await _state(ctx, announcement_id))
    # Half way, then "the process dies": the committed cursor marks where it got to.
    assert not await fan_out_batch(ctx, plan, batch_size=N // 2)
    half = await _state(ctx, announcement_id)
    assert half.state == "pending"
    assert await count(ctx, Message, col(Message.announcement_id) == announcement_id) == N // 2
    assert await count(ctx, Message, col(Message.supporter_id) > half.fanout_cursor) == 0

    tasks = await resume_pending_fanouts(ctx)
    assert len(tasks) == 1
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=60)
    done = await _state(ctx, announcement_id)
    assert done.state == "fanned_out" and done.recipients == N
    async with ctx.sessions() as session:
        statuses = dict(
            (
                await session.execute(
                    select(col(Message.status), func.count())
                    .where(col(Message.announcement_id) == announcement_id)
                    .group_by(col(Message.status))
                )
            ).all()
        )
    assert statuses == {"queued": N - N // 10, "skipped": N // 10}
    assert await count(ctx, OutboxItem) == N - N // 10
    # Fanned out: running it again writes nothing.
    assert await fan_out(ctx, announcement_id) == 0
    assert await count(ctx, Message) == N


async def test_a_rolled_back_cursor_cannot_duplicate(client: httpx.AsyncClient) -> None:
    """Even if the cursor were lost, (announcement, supporter) is unique."""
    ctx: AppContext = client.ctx  # type: ignore[attr-defined]
    ctx.registry.add(FakeAdapter(channels=("sms",)))
    team = await make_team(ctx, "Everyone")
    await bulk_members(ctx, 20, team_id=team)
    announcement_id = await _announcement(ctx, team)
    plan = FanoutPlan.of(await _state(ctx, announcement_id))
    assert not await fan_out_batch(ctx, plan, batch_size=10)
    async with ctx.sessions() as session:
        await session.execute(
            update(Announcement)
            .where(col(Announcement.id) == announcement_id)
            .values(fanout_cursor=0)
        )
        await session.commit()
    with pytest.raises(IntegrityError):  # the unique index refuses the batch
        await fan_out_batch(ctx, plan, batch_size=10)
    assert await count(ctx, Message) == 10 and await count(ctx, OutboxItem) == 10


async def test_two_runners_at_once_write_each_message_once(client: httpx.AsyncClient) -> None:
    ctx: AppContext = client.ctx  # type: ignore[attr-defined]
    ctx.registry.add(FakeAdapter(channels=("sms",)))
    team = await make_team(ctx, "Everyone")
    await bulk_members(ctx, 3_000, team_id=team)
    announcement_id = await _announcement(ctx, team)
    await asyncio.wait_for(
        asyncio.gather(
            fan_out(ctx, announcement_id, batch_size=500),
            fan_out(ctx, announcement_id, batch_size=700),
        ),
        timeout=60,
    )
    await _assert_exactly_once(ctx, announcement_id, 3_000)
    assert (await _state(ctx, announcement_id)).state == "fanned_out"


async def test_more_known_cases_than_tried_still_reach_every_member(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past MAX_TRIED known (preferred, code) cases a batch reads its own cases and
    inserts all of them, including the ones earlier batches had met."""
    ctx: AppContext = client.ctx  # type: ignore[attr-defined]
    ctx.registry.add(FakeAdapter(channels=("sms",)))
    monkeypatch.setattr(fanout_sql, "MAX_TRIED", 1)  # two cases: opted out or not
    team = await make_team(ctx, "Everyone")
    await bulk_members(ctx, 12, team_id=team, opted_out_every=2)
    announcement_id = await _announcement(ctx, team)
    plan = FanoutPlan.of(await _state(ctx, announcement_id))
    while not await fan_out_batch(ctx, plan, batch_size=4):
        pass
    assert len(plan.pairs_seen) == 2  # more than MAX_TRIED: later batches took the other path
    await _assert_exactly_once(ctx, announcement_id, 12, queued=6)  # six not opted out
    assert (await _state(ctx, announcement_id)).recipients == 12
