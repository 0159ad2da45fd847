"""Group commit of send outcomes: many sends, one transaction.

Each send task hands its outcome to the dispatcher's `Recorder` and waits for the commit.
One writer task takes everything queued (up to `max_batch`) and stores it in ONE
transaction: the successes and the rows given back with set-based statements, the
failures (retry, fall back, give up, opt out) as routing/dispatch/failures.py does, so a
throttling storm or an outage costs no more transactions than a run of successes. If that
transaction fails, the batch is rolled back whole and stored again one outcome at a time.
The writer starts on demand and ends when the queue is empty.

A crash before the commit leaves the attempts without a provider id: after the lease
expires they are settled as interrupted and those messages are sent again (the one
at-least-once window, as with a crash between the provider's accept and any commit; for
a failure it only means the try is repeated).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Integer, Table, bindparam, delete, func, update
from sqlalchemy import select as sa_select
from sqlmodel import SQLModel, col
from sqlmodel.ext.asyncio.session import AsyncSession

from channels.base import SendResult
from routing.context import AppContext
from routing.delivery.status import apply_pending_statuses
from routing.dispatch.batch import Ready
from routing.dispatch.failures import write_failed
from routing.dispatch.outcome import record_success
from routing.webhooks.events import emit_many, status_changed
from storage.bulk_insert import BulkWriter
from storage.group_commit import GroupCommit
from storage.models import MessageAttempt, PendingStatus

log = logging.getLogger(__name__)

MAX_BATCH = 500
MESSAGES: Table = SQLModel.metadata.tables["messages"]
ATTEMPTS: Table = SQLModel.metadata.tables["message_attempts"]
EVENTS: Table = SQLModel.metadata.tables["message_status_events"]
SUPPORTERS: Table = SQLModel.metadata.tables["supporters"]
OUTBOX: Table = SQLModel.metadata.tables["outbox"]


@dataclass(frozen=True)
class Outcome:
    """What became of one claimed row: sent (`result`), failed (`error`), or given back
    unsent (`give_back`; due again at `due_at`, or as it was when None)."""

    ready: Ready
    result: SendResult | None = None
    error: BaseException | None = None
    give_back: bool = False
    due_at: datetime | None = None


class Recorder:
    def __init__(
        self,
        ctx: AppContext,
        owner: str,
        *,
        random: Callable[[], float],
        max_batch: int = MAX_BATCH,
    ) -> None:
        self.ctx = ctx
        self.owner = owner
        self.random = random
        self._group: GroupCommit[Outcome, None] = GroupCommit(
            self._write_batch, max_batch=max_batch, name=f"recorder {owner}"
        )
        self.batches = 0  # transactions that stored a batch of outcomes

    async def record(self, *outcomes: Outcome) -> None:
        """Store `outcomes`; returns once they are committed."""
        await self._group.submit_many(outcomes)

    async def aclose(self) -> None:
        await self._group.aclose()

    async def _write_batch(self, outcomes: list[Outcome]) -> list[None]:
        try:
            await self._write(outcomes)
        except Exception:
            log.exception("recording %s send outcomes failed", len(outcomes))
            raise
        return [None] * len(outcomes)

    async def _write(self, outcomes: list[Outcome]) -> None:
        sent = [o for o in outcomes if o.result is not None]
        back = [o for o in outcomes if o.give_back]
        failed = [(o.ready, o.error) for o in outcomes if o.error is not None]
        try:
            async with self.ctx.sessions() as session:
                await write_sent(session, self.ctx, sent)
                await write_back(session, self.owner, back)
                await write_failed(session, self.ctx, self.owner, failed, random=self.random)
                await session.commit()
            self.batches += 1
        except Exception as exc:
            log.warning("batched record of %s outcomes failed (%s); one by one", len(outcomes), exc)
            await self._one_by_one(sent, back, failed)

    async def _one_by_one(
        self, sent: list[Outcome], back: list[Outcome], failed: list[tuple[Ready, BaseException]]
    ) -> None:
        for failure in failed:
            try:
                async with self.ctx.sessions() as session:
                    await write_failed(session, self.ctx, self.owner, [failure], random=self.random)
                    await session.commit()
            except Exception:
                # The lease runs out and the row is tried again.
                log.exception("recording the failure of message %s failed", failure[0].message_id)
        for outcome in sent:
            assert outcome.result is not None
            async with self.ctx.sessions() as session:
                attempt = await session.get(MessageAttempt, outcome.ready.attempt_id)
                if attempt is not None:
                    await record_success(session, self.ctx, attempt, outcome.result)
                await session.commit()
        if back:
            async with self.ctx.sessions() as session:
                await write_back(session, self.owner, back)
                await session.commit()


async def write_sent(session: AsyncSession, ctx: AppContext, outcomes: Sequence[Outcome]) -> None:
    """`record_success` for many sends with a handful of statements."""
    if not outcomes:
        return
    now = ctx.clock()
    ids = [o.ready.message_id for o in outcomes]
    current = {
        mid: (status, channel)
        for mid, status, channel in (
            await session.execute(
                sa_select(MESSAGES.c.id, MESSAGES.c.status, MESSAGES.c.channel).where(
                    MESSAGES.c.id.in_(ids)
                )
            )
        ).all()
    }
    await session.execute(
        update(ATTEMPTS)
        .where(ATTEMPTS.c.id == bindparam("a_id"))
        .values(provider_message_id=bindparam("a_pid"), status="sent"),
        [{"a_id": o.ready.attempt_id, "a_pid": _pid(o)} for o in outcomes],
    )
    moved = []
    for o in outcomes:
        if current.get(o.ready.message_id) == ("queued", o.ready.channel):
            moved.append(o)
        else:
            # Only when a lease ran out mid-send and another dispatcher moved it on.
            mid = o.ready.message_id
            log.warning("message %s was %s when its send returned", mid, current.get(mid))
    if moved:
        await session.execute(
            update(MESSAGES)
            .where(
                MESSAGES.c.id == bindparam("m_id"),
                MESSAGES.c.status == "queued",
                MESSAGES.c.channel == bindparam("m_channel"),
            )
            .values(
                status="sent",
                provider_message_id=bindparam("m_pid"),
                sent_at=now,
                updated_at=now,
                segments=func.coalesce(bindparam("m_segments", type_=Integer), MESSAGES.c.segments),
            ),
            [
                {
                    "m_id": o.ready.message_id,
                    "m_channel": o.ready.channel,
                    "m_pid": _pid(o),
                    "m_segments": o.result.segments if o.result else None,
                }
                for o in moved
            ],
        )
        writer = BulkWriter(await session.connection())
        created = writer.bind(EVENTS, "created_at", now)
        await writer.insert(
            EVENTS,
            ("message_id", "channel", "status", "created_at"),
            [(o.ready.message_id, o.ready.channel, "sent", created) for o in moved],
        )
        sent = [status_changed(o.ready.message_id, o.ready.channel, "sent") for o in moved]
        await emit_many(session, "message.status", sent, now)
    await session.execute(
        update(SUPPORTERS)
        .where(SUPPORTERS.c.id.in_({o.ready.supporter_id for o in outcomes}))
        .values(last_outbound_at=now)
    )
    await session.execute(delete(OUTBOX).where(OUTBOX.c.message_id.in_(ids)))
    await _apply_pending(session, ctx, outcomes)


def _pid(outcome: Outcome) -> str:
    assert outcome.result is not None
    return outcome.result.provider_message_id


async def _apply_pending(
    session: AsyncSession, ctx: AppContext, outcomes: Sequence[Outcome]
) -> None:
    """Callbacks that beat these results to the database: one query finds them, and only
    the sends they belong to take the slow path."""
    waiting = set(
        (
            await session.execute(
                sa_select(col(PendingStatus.channel), col(PendingStatus.provider_message_id))
                .where(col(PendingStatus.provider_message_id).in_([_pid(o) for o in outcomes]))
                .distinct()
            )
        ).all()
    )
    for outcome in outcomes:
        if (outcome.ready.channel, _pid(outcome)) in waiting:
            attempt = await session.get(MessageAttempt, outcome.ready.attempt_id)
            if attempt is not None:
                await apply_pending_statuses(session, ctx, attempt)


async def write_back(session: AsyncSession, owner: str, outcomes: Sequence[Outcome]) -> None:
    """Rows claimed but not sent: their attempt goes, the try is not counted, the lease
    is released (only while it is still ours)."""
    if not outcomes:
        return
    await session.execute(
        delete(ATTEMPTS).where(
            ATTEMPTS.c.id.in_([o.ready.attempt_id for o in outcomes]),
            ATTEMPTS.c.status == "queued",
            ATTEMPTS.c.provider_message_id.is_(None),
        )
    )
    for rescheduled in (True, False):
        group = [o for o in outcomes if (o.due_at is not None) == rescheduled]
        if not group:
            continue
        values = {"lease_owner": None, "lease_until": None, "attempts": OUTBOX.c.attempts - 1}
        if rescheduled:
            values["due_at"] = bindparam("o_due")
        await session.execute(
            update(OUTBOX)
            .where(OUTBOX.c.id == bindparam("o_id"), OUTBOX.c.lease_owner == owner)
            .values(**values),
            [
                {"o_id": o.ready.outbox_id, "o_due": o.due_at}
                if rescheduled
                else {"o_id": o.ready.outbox_id}
                for o in group
            ],
        )
