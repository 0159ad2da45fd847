"""Reminders before each event occurrence (RALLYPOINT_EVENT_REMINDERS, default 24h and
1h), to those who said yes or maybe, once each even across restarts and with several
schedulers: the reminder is claimed by inserting its (occurrence, offset) row, unique, in
the transaction that queues its messages, so only one scheduler's insert wins and a crash
before the commit leaves it to be sent by the next round.

A reminder is due from `starts_at - offset` until the start, if the occurrence existed
before that time (an event made 2 hours ahead gets the 1 h reminder, not the 24 h one).
When several are due at once (the scheduler was down), only the nearest is sent; the
others are claimed with no recipients.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from routing.context import AppContext
from routing.organizing.event_notices import answered, recipients, send_notice
from routing.organizing.event_text import local_start, reminder_text
from routing.organizing.events import facts_of
from storage.models import Event, EventOccurrence, EventReminder

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Upcoming:
    occurrence_id: int
    event_id: int
    starts_at: datetime
    created_at: datetime


def due_offsets(
    offsets: list[float], starts_at: datetime, created_at: datetime, now: datetime
) -> list[int]:
    """The offsets (whole seconds) due now, nearest to the start first."""
    due = []
    for offset in sorted(offsets):
        at = starts_at - timedelta(seconds=offset)
        if at <= now < starts_at and created_at < at:
            due.append(int(offset))
    return due


async def upcoming(session: AsyncSession, now: datetime, within: float) -> list[Upcoming]:
    """Occurrences of events not cancelled starting in (now, now + within]."""
    query = (
        select(
            col(EventOccurrence.id),
            col(EventOccurrence.event_id),
            col(EventOccurrence.starts_at),
            col(EventOccurrence.created_at),
        )
        .join(Event, col(Event.id) == col(EventOccurrence.event_id))
        .where(
            col(EventOccurrence.starts_at) > now,
            col(EventOccurrence.starts_at) <= now + timedelta(seconds=within),
            col(Event.cancelled_at).is_(None),
        )
        .order_by(col(EventOccurrence.starts_at), col(EventOccurrence.id))
    )
    return [Upcoming(*row) for row in (await session.execute(query)).all()]


async def claimed(session: AsyncSession, occurrence_ids: list[int]) -> set[tuple[int, int]]:
    found: set[tuple[int, int]] = set()
    for start in range(0, len(occurrence_ids), 1000):
        chunk = occurrence_ids[start : start + 1000]
        rows = await session.execute(
            select(col(EventReminder.occurrence_id), col(EventReminder.offset_seconds)).where(
                col(EventReminder.occurrence_id).in_(chunk)
            )
        )
        found.update((int(o), int(s)) for o, s in rows.all())
    return found


async def run_due_reminders(ctx: AppContext) -> int:
    """Send every reminder due now, each claimed in its own transaction; the number sent."""
    offsets = list(ctx.settings.event_reminders)
    if not offsets:
        return 0
    now = ctx.clock()
    async with ctx.sessions() as session:
        candidates = await upcoming(session, now, max(offsets))
        done = await claimed(session, [c.occurrence_id for c in candidates])
    sent = 0
    for candidate in candidates:
        due = [
            offset
            for offset in due_offsets(offsets, candidate.starts_at, candidate.created_at, now)
            if (candidate.occurrence_id, offset) not in done
        ]
        if due and await remind(ctx, candidate, due, now):
            sent += 1
    return sent


async def remind(ctx: AppContext, occurrence: Upcoming, due: list[int], now: datetime) -> bool:
    """Claim the due reminders of one occurrence and queue the nearest; False when another
    scheduler claimed it first."""
    async with ctx.sessions() as session:
        claim = EventReminder(
            occurrence_id=occurrence.occurrence_id,
            offset_seconds=due[0],
            sent_at=now,
        )
        try:
            async with session.begin_nested():
                session.add(claim)
                for offset in due[1:]:  # passed while nobody ran: not sent, not again
                    session.add(
                        EventReminder(
                            occurrence_id=occurrence.occurrence_id,
                            offset_seconds=offset,
                            sent_at=now,
                        )
                    )
        except IntegrityError:
            await session.rollback()
            return False
        event = await session.get(Event, occurrence.event_id)
        if event is None or event.cancelled_at is not None:
            await session.rollback()
            return False
        who = await recipients(
            session,
            occurrence.event_id,
            answered("yes", "maybe"),
            occurrence_ids=[occurrence.occurrence_id],
        )
        facts = facts_of(event, occurrence.starts_at)
        default = ctx.settings.default_timezone
        claim.recipients = await send_notice(
            session,
            ctx,
            who,
            lambda tz: reminder_text(facts, local_start(occurrence.starts_at, tz, default)),
            kind="event_reminder",
            subject="Reminder: " + event.title,
        )
        session.add(claim)
        await session.commit()
    log.info(
        "event %s reminder %ss before occurrence %s: %s recipients",
        occurrence.event_id,
        due[0],
        occurrence.occurrence_id,
        claim.recipients,
    )
    return True
