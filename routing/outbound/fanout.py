"""Announcement fan-out: the audience, streamed by supporter id, into messages and outbox rows.

Each batch is one transaction that writes its messages and outbox rows with bulk inserts
and moves `Announcement.fanout_cursor` to the last supporter id it covered, so a crash
loses at most one uncommitted batch and a resumed fan-out starts after the last commit.
The announcement row is locked per batch (FOR UPDATE; SQLite takes its write lock up
front) and (announcement_id, supporter_id) is unique, so two runners never duplicate.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from sqlalchemy import Integer, Table, func, insert, literal, select, update
from sqlmodel import SQLModel, col
from sqlmodel.ext.asyncio.session import AsyncSession

from routing.context import AppContext
from routing.outbound.audience import SUPPORTER, read_page
from routing.outbound.fanout_hooks import FANOUT_HOOKS
from routing.outbound.fanout_rows import (
    MESSAGE_COLUMNS,
    MESSAGES,
    FanoutPlan,
    conversation_ids,
    message_rows,
)
from routing.outbound.fanout_sql import SqlFanout, page_end
from routing.outbound.queue import PRIORITY_BULK
from routing.texts.variables import recipients_values
from storage.bulk_insert import BulkWriter
from storage.models import Announcement, Message

__all__ = [
    "BATCH_SIZE",
    "FanoutPlan",
    "FanoutService",
    "fan_out",
    "fan_out_batch",
    "resume_pending_fanouts",
    "start_fanout",
]

log = logging.getLogger(__name__)

# Supporters per transaction: big enough that per-batch costs (the page query, the
# commit) stay small, small enough to hold SQLite's write lock ~0.1 s at a time.
BATCH_SIZE = 5000
OUTBOX: Table = SQLModel.metadata.tables["outbox"]


async def fan_out_batch(ctx: AppContext, plan: FanoutPlan, batch_size: int = BATCH_SIZE) -> bool:
    """Fan out the next batch in one transaction; True when the announcement is done."""
    async with ctx.sessions() as session:
        state = (
            await session.execute(
                select(col(Announcement.fanout_cursor), col(Announcement.state))
                .where(col(Announcement.id) == plan.announcement_id)
                .with_for_update()
            )
        ).first()
        if state is None or state.state != "pending":
            return True
        after = state.fanout_cursor
        count, last = await write_recipients(ctx, session, plan, after, batch_size, ctx.clock())
        if not count:
            await _finish(session, plan.announcement_id)
            await session.commit()
            return True
        await session.execute(
            update(Announcement)
            .where(col(Announcement.id) == plan.announcement_id)
            .values(fanout_cursor=last)
        )
        done = count < batch_size  # a short batch: the audience ran out
        if done:
            await _finish(session, plan.announcement_id)
        await session.commit()
        return done


async def write_recipients(
    ctx: AppContext,
    session: AsyncSession,
    plan: FanoutPlan,
    after: int,
    batch_size: int,
    now: datetime,
) -> tuple[int, int]:
    """Every recipient's message and outbox row of one batch (the next `batch_size`
    members after supporter `after`), in the caller's transaction: the one place where
    an announcement's recipient rows are created. Returns (members, last supporter id).

    A plain body goes set-based (routing/outbound/fanout_sql.py: no row in Python); a
    body with merge variables, or a kind with a fan-out hook, builds its rows in Python.
    """
    hook = FANOUT_HOOKS.get(plan.kind)
    if plan.variables is None and hook is None:
        conn = await session.connection()
        count, last = await page_end(conn, plan.audience, after, batch_size)
        if count:
            await SqlFanout(ctx, plan, now).write(conn, after, last, count)
    else:
        page = await read_page(session, plan.audience, after, batch_size)
        if not page:
            return 0, after
        writer = BulkWriter(await session.connection())
        created = await conversation_ids(session, writer, page, now)
        personal = None
        if plan.variables is not None:  # only then: a plain body shares one value
            ids = list(dict.fromkeys(r[SUPPORTER] for r in page))
            personal = await recipients_values(session, plan.variables, ids)
        rows = message_rows(ctx, plan, writer, page, created, now, personal)  # one per member
        if hook is not None:
            rows = await hook.rows(ctx, session, writer, plan, rows, now)
        await writer.insert(MESSAGES, MESSAGE_COLUMNS, rows)
        count, last = len(rows), page[-1][SUPPORTER]
    if count:
        await _queue_outbox(session, plan, after, last, now)
        if hook is not None:
            await hook.after_batch(session, plan, after, last, now)
    return count, last


async def _queue_outbox(
    session: AsyncSession, plan: FanoutPlan, after: int, last: int, now: datetime
) -> None:
    """Outbox rows for the batch's queued messages, in one INSERT … SELECT by the
    (announcement, supporter) index: no ids travel to Python and back."""
    queued = select(
        col(Message.id),
        literal(PRIORITY_BULK, Integer),
        literal(plan.due_at or now, OUTBOX.c.due_at.type),
        literal(0, Integer),
        literal(now, OUTBOX.c.created_at.type),
    ).where(
        col(Message.announcement_id) == plan.announcement_id,
        col(Message.supporter_id) > after,
        col(Message.supporter_id) <= last,
        col(Message.status) == "queued",
    )
    columns = ["message_id", "priority", "due_at", "attempts", "created_at"]
    await session.execute(insert(OUTBOX).from_select(columns, queued))


async def _finish(session: AsyncSession, announcement_id: int) -> None:
    written = (
        await session.execute(
            select(func.count())
            .select_from(Message)
            .where(col(Message.announcement_id) == announcement_id)
        )
    ).scalar_one()
    await session.execute(
        update(Announcement)
        .where(col(Announcement.id) == announcement_id)
        .values(state="fanned_out", recipients=written)
    )


async def fan_out(ctx: AppContext, announcement_id: int, *, batch_size: int = BATCH_SIZE) -> int:
    """Fan out (or finish fanning out) one announcement; returns the batches written."""
    async with ctx.sessions() as session:
        announcement = await session.get(Announcement, announcement_id)
        if announcement is None or announcement.state != "pending":
            return 0
        plan = FanoutPlan.of(announcement)
    batches = 0
    while not await fan_out_batch(ctx, plan, batch_size):
        batches += 1
    log.info("announcement %s fanned out in %s batches", announcement_id, batches)
    return batches


def start_fanout(ctx: AppContext, announcement_id: int) -> asyncio.Task[int]:
    """Fan out in the background; one task per announcement in this process."""
    running = ctx.fanouts.get(announcement_id)
    if running is not None and not running.done():
        return running
    task = asyncio.create_task(fan_out(ctx, announcement_id), name=f"fanout-{announcement_id}")
    ctx.fanouts[announcement_id] = task

    def forget(done: asyncio.Task[int]) -> None:
        if ctx.fanouts.get(announcement_id) is done:
            del ctx.fanouts[announcement_id]
        if not done.cancelled() and done.exception() is not None:
            log.error(
                "fan-out of announcement %s failed", announcement_id, exc_info=done.exception()
            )

    task.add_done_callback(forget)
    return task


async def resume_pending_fanouts(ctx: AppContext) -> list[asyncio.Task[int]]:
    """Start background fan-outs for every announcement left pending (e.g. by a crash)."""
    async with ctx.sessions() as session:
        pending = (
            await session.scalars(
                select(col(Announcement.id))
                .where(col(Announcement.state) == "pending")
                .order_by(col(Announcement.id))
            )
        ).all()
    return [start_fanout(ctx, announcement_id) for announcement_id in pending if announcement_id]


class FanoutService:
    """Background service for `serve`: resumes pending fan-outs, cancels them on stop."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    async def start(self) -> None:
        await resume_pending_fanouts(self.ctx)

    async def stop(self) -> None:
        # A cancelled batch rolls back; the cursor makes the next start resume there.
        tasks = list(self.ctx.fanouts.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
