"""Changing an event: creating it with its occurrences, moving it, cancelling it, and
marking who came. Each works in the caller's transaction; the caller commits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from routing.context import AppContext
from routing.organizing.event_notices import answered, recipients, send_notice
from routing.organizing.event_schedule import occurrence_starts
from routing.organizing.event_text import cancel_text, local_start, update_text
from routing.organizing.events import facts_of, ics_attachment
from storage.models import Event, EventOccurrence, EventReminder, EventRsvp, Supporter

# Fields a PATCH may change; a change of these tells those who said yes or maybe.
EDITABLE = (
    "title",
    "starts_at",
    "duration_minutes",
    "location_url",
    "description",
    "capacity",
    "kind",
)
TOLD_OF = ("starts_at", "location_url")


async def add_occurrences(session: AsyncSession, event: Event, now: datetime) -> None:
    assert event.id is not None
    for start in occurrence_starts(event.starts_at, event.recurrence, now):
        session.add(EventOccurrence(event_id=event.id, starts_at=start, created_at=now))
    await session.flush()


def _when(ctx: AppContext, event: Event) -> Any:
    default = ctx.settings.default_timezone
    return lambda timezone: local_start(event.starts_at, timezone, default)


@dataclass(frozen=True)
class Changed:
    fields: tuple[str, ...]
    notified: int


async def change_event(
    session: AsyncSession, ctx: AppContext, event: Event, changes: dict[str, Any]
) -> Changed:
    """Apply `changes` (EDITABLE fields); a new start moves every occurrence not yet
    started by the same amount (their reminders may go again) and, like a new link, is
    told to those who said yes or maybe, with the updated calendar file."""
    assert event.id is not None
    now = ctx.clock()
    fields = tuple(k for k in EDITABLE if k in changes and getattr(event, k) != changes[k])
    if "starts_at" in fields:
        shift = changes["starts_at"] - event.starts_at
        moved = select(col(EventOccurrence.id)).where(
            col(EventOccurrence.event_id) == event.id, col(EventOccurrence.starts_at) > now
        )
        moved_ids = [int(i) for i in (await session.exec(moved)).all() if i is not None]
        occurrences = (
            await session.exec(
                select(EventOccurrence).where(col(EventOccurrence.id).in_(moved_ids))
            )
        ).all()
        # Latest first when moving later, earliest first when earlier: no clash on the way.
        for occurrence in sorted(
            occurrences, key=lambda o: o.starts_at, reverse=shift.total_seconds() > 0
        ):
            occurrence.starts_at = occurrence.starts_at + shift
            session.add(occurrence)
            await session.flush()
        await session.execute(
            delete(EventReminder).where(col(EventReminder.occurrence_id).in_(moved_ids))
        )
    for name in fields:
        setattr(event, name, changes[name])
    if fields:
        event.updated_at = now
        session.add(event)
        await session.flush()
    notified = 0
    if any(name in TOLD_OF for name in fields) and event.cancelled_at is None:
        who = await recipients(session, event.id, answered("yes", "maybe"), upcoming_after=now)
        when = _when(ctx, event)
        facts = facts_of(event)
        notified = await send_notice(
            session,
            ctx,
            who,
            lambda tz: update_text(facts, when(tz)),
            kind="event_update",
            subject="Update: " + event.title,
            attachments=[ics_attachment(event, ctx.settings, "REQUEST")],
        )
    return Changed(fields, notified)


async def cancel_event(session: AsyncSession, ctx: AppContext, event: Event) -> int:
    """Mark it cancelled and tell those who said yes or maybe (with a CANCEL calendar
    file); the number told."""
    assert event.id is not None
    now = ctx.clock()
    event.cancelled_at = now
    event.updated_at = now
    session.add(event)
    await session.flush()
    who = await recipients(session, event.id, answered("yes", "maybe"), upcoming_after=now)
    when = _when(ctx, event)
    facts = facts_of(event)
    return await send_notice(
        session,
        ctx,
        who,
        lambda tz: cancel_text(facts, when(tz)),
        kind="event_update",
        subject="Cancelled: " + event.title,
        attachments=[ics_attachment(event, ctx.settings, "CANCEL")],
    )


async def mark_attendance(
    session: AsyncSession,
    event: Event,
    occurrence: EventOccurrence,
    supporter_ids: Sequence[int],
    now: datetime,
    attended: bool = True,
) -> int:
    """Mark (or unmark) who came; someone not invited who came gets an RSVP row too."""
    assert event.id is not None and occurrence.id is not None
    existing = set(
        (
            await session.exec(
                select(col(EventRsvp.supporter_id)).where(
                    col(EventRsvp.occurrence_id) == occurrence.id,
                    col(EventRsvp.supporter_id).in_(supporter_ids),
                )
            )
        ).all()
    )
    await session.execute(
        update(EventRsvp)
        .where(
            col(EventRsvp.occurrence_id) == occurrence.id,
            col(EventRsvp.supporter_id).in_(supporter_ids),
        )
        .values(attended=attended, attended_at=now if attended else None)
    )
    if attended:
        # Coming to an event is activity, like writing in (check-ins' inactivity).
        when = min(now, occurrence.starts_at)
        await session.execute(
            update(Supporter)
            .where(
                col(Supporter.id).in_(supporter_ids),
                or_(
                    col(Supporter.last_attended_at).is_(None),
                    col(Supporter.last_attended_at) < when,
                ),
            )
            .values(last_attended_at=when)
        )
        for supporter_id in supporter_ids:
            if supporter_id not in existing:
                session.add(
                    EventRsvp(
                        event_id=event.id,
                        occurrence_id=occurrence.id,
                        supporter_id=supporter_id,
                        attended=True,
                        attended_at=now,
                        invited_at=now,
                    )
                )
        await session.flush()
    return len(supporter_ids)
