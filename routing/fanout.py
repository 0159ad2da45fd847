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
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, Table, func, insert, literal, select, update
from sqlmodel import SQLModel, col
from sqlmodel.ext.asyncio.session import AsyncSession

from gateway.context import AppContext
from routing.audience import Audience, BatchChooser, Member, read_page
from routing.bulk_insert import BulkWriter
from routing.outbound import PRIORITY_BULK, ChannelChoice
from routing.segments import sms_segments
from storage.models import Announcement, Conversation, Message

log = logging.getLogger(__name__)

BATCH_SIZE = 5000
# Core tables: bulk inserts through the ORM cost several times more per row.
MESSAGES: Table = SQLModel.metadata.tables["messages"]
OUTBOX: Table = SQLModel.metadata.tables["outbox"]
CONVERSATIONS: Table = SQLModel.metadata.tables["conversations"]


@dataclass(frozen=True)
class FanoutPlan:
    """What every message of one announcement shares, computed once."""

    announcement_id: int
    kind: str
    body: str
    subject: str | None
    template: dict[str, Any] | None
    audience: Audience
    due_at: datetime | None
    sms_segments: int

    @classmethod
    def of(cls, announcement: Announcement) -> FanoutPlan:
        assert announcement.id is not None
        return cls(
            announcement_id=announcement.id,
            kind=announcement.kind,
            body=announcement.body,
            subject=announcement.subject,
            template=announcement.template,
            audience=Audience.from_dict(announcement.audience or {}),
            due_at=announcement.send_at,
            sms_segments=sms_segments(announcement.body),
        )


MESSAGE_COLUMNS = (
    "conversation_id",
    "supporter_id",
    "channel",
    "address",
    "status",
    "error",
    "segments",
    "channel_choice",
    "direction",
    "kind",
    "body",
    "subject",
    "attachments",
    "template",
    "announcement_id",
    "created_at",
    "updated_at",
)


async def _conversation_ids(
    session: AsyncSession, writer: BulkWriter, page: list[Member], now: datetime
) -> dict[int, int]:
    """Conversation id by supporter for the page, creating the missing ones in bulk."""
    found = {m.id: m.conversation_id for m in page if m.conversation_id is not None}
    missing = [m.id for m in page if m.conversation_id is None]
    if missing:
        created_at = writer.bind(CONVERSATIONS, "created_at", now)
        await writer.insert(
            CONVERSATIONS,
            ("supporter_id", "created_at", "unread", "unread_count"),
            [(i, created_at, False, 0) for i in missing],
            # Another writer may have opened one meanwhile (PostgreSQL): use that one.
            on_conflict_do_nothing=True,
        )
        rows = await session.execute(
            select(col(Conversation.supporter_id), col(Conversation.id)).where(
                col(Conversation.supporter_id).in_(missing)
            )
        )
        found.update({supporter_id: convo_id for supporter_id, convo_id in rows})
    return found


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
        page = await read_page(session, plan.audience, after, batch_size)
        if not page:
            await _finish(session, plan.announcement_id)
            await session.commit()
            return True
        now = ctx.clock()
        writer = BulkWriter(await session.connection())
        conversations = await _conversation_ids(session, writer, page, now)
        await writer.insert(
            MESSAGES, MESSAGE_COLUMNS, _message_rows(ctx, plan, writer, page, conversations, now)
        )
        last = page[-1].id
        await _queue_outbox(session, plan, after, last, now)
        await session.execute(
            update(Announcement)
            .where(col(Announcement.id) == plan.announcement_id)
            .values(fanout_cursor=last)
        )
        done = len(page) < batch_size  # a short batch: the audience ran out
        if done:
            await _finish(session, plan.announcement_id)
        await session.commit()
        return done


def _message_rows(
    ctx: AppContext,
    plan: FanoutPlan,
    writer: BulkWriter,
    page: list[Member],
    conversations: dict[int, int],
    now: datetime,
) -> list[tuple[Any, ...]]:
    chooser = BatchChooser(ctx, plan.audience, now, has_template=plan.template is not None)
    shared = _shared_values(writer, plan, now)
    # Per distinct choice: channel, status, error, segments, bound channel_choice JSON.
    outcomes: list[tuple[Any, ...]] = []
    rows = []
    for member in page:
        index, address = chooser.choose(member)
        if index == len(outcomes):
            outcomes.append(_outcome(writer, plan, chooser.choices[index], member.opted_out))
        channel, status, error, segments, choice = outcomes[index]
        rows.append(
            (
                conversations[member.id],
                member.id,
                channel,
                address,
                status,
                error,
                segments,
                choice,
                *shared,
            )
        )
    return rows


def _outcome(
    writer: BulkWriter, plan: FanoutPlan, choice: ChannelChoice, opted_out: bool
) -> tuple[Any, ...]:
    if opted_out:
        status, error = "skipped", "opted out"
    elif choice.channel is None:
        status, error = "failed", choice.reason
    else:
        status, error = "queued", None
    value = {"skipped": choice.skipped, "template": choice.use_template}
    return (
        choice.channel,
        status,
        error,
        plan.sms_segments if choice.channel == "sms" else None,
        writer.bind(MESSAGES, "channel_choice", value),
    )


def _shared_values(writer: BulkWriter, plan: FanoutPlan, now: datetime) -> tuple[Any, ...]:
    """The message columns every row of the announcement shares, bound once."""
    stamp = writer.bind(MESSAGES, "created_at", now)
    return (
        "outbound",
        plan.kind,
        plan.body,
        plan.subject,
        writer.bind(MESSAGES, "attachments", []),
        writer.bind(MESSAGES, "template", plan.template),
        plan.announcement_id,
        stamp,
        stamp,
    )


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
