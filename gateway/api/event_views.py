"""Reading events for the API and the console: what a key may see, and the answers."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gateway.api.event_schemas import EventDetail, EventPublic, Occurrence
from gateway.api.scope import lead_team, not_found
from gateway.auth import Principal
from routing.organizing.event_counts import (
    ATTENDED,
    COUNT_KEYS,
    counts_by_channel,
    occurrence_counts,
)
from routing.organizing.events import first_occurrence
from storage.models import Event, EventOccurrence, EventRsvp

MAX_LISTED_OCCURRENCES = 200


async def visible_event(session: AsyncSession, principal: Principal, event_id: int) -> Event:
    """The event, if `principal` may see it (team leads: their team's only); else 404."""
    event = await session.get(Event, event_id)
    own = lead_team(principal)
    if event is None or (own is not None and event.team_scope_id != own):
        raise not_found("event")
    return event


async def counted_occurrence(
    session: AsyncSession, event: Event, now: datetime, occurrence_id: int | None = None
) -> EventOccurrence | None:
    """The occurrence counts are of: the one asked for (404 if not the event's), else the
    next that has not ended, else the last."""
    assert event.id is not None
    if occurrence_id is not None:
        found = await session.get(EventOccurrence, occurrence_id)
        if found is None or found.event_id != event.id:
            raise not_found("occurrence")
        return found
    base = select(EventOccurrence).where(col(EventOccurrence.event_id) == event.id)
    ends = now - _duration(event)
    upcoming = base.where(col(EventOccurrence.starts_at) > ends).order_by(
        col(EventOccurrence.starts_at)
    )
    found = (await session.exec(upcoming.limit(1))).first()
    if found is None:
        last = base.order_by(col(EventOccurrence.starts_at).desc()).limit(1)
        found = (await session.exec(last)).first()
    return found


def _duration(event: Event) -> timedelta:
    return timedelta(minutes=event.duration_minutes)


async def invited_count(session: AsyncSession, event: Event) -> int:
    """Invitees: the RSVP rows of the first occurrence (invitations write them)."""
    assert event.id is not None
    first = await first_occurrence(session, event.id)
    if first is None:
        return 0
    query = (
        select(func.count()).select_from(EventRsvp).where(col(EventRsvp.occurrence_id) == first.id)
    )
    return int((await session.exec(query)).one())


async def event_public(
    session: AsyncSession, event: Event, now: datetime, occurrence_id: int | None = None
) -> EventPublic:
    assert event.id is not None
    occurrence = await counted_occurrence(session, event, now, occurrence_id)
    invited = await invited_count(session, event)
    counts = (
        await occurrence_counts(session, occurrence.id, invited)
        if occurrence is not None and occurrence.id is not None
        else dict.fromkeys(COUNT_KEYS, 0)
    )
    return EventPublic(
        id=event.id,
        title=event.title,
        kind=event.kind,
        starts_at=occurrence.starts_at if occurrence else event.starts_at,
        duration_minutes=event.duration_minutes,
        location_url=event.location_url,
        description=event.description,
        capacity=event.capacity,
        audience=event.audience or {},
        recurrence=event.recurrence,
        cancelled_at=event.cancelled_at,
        announcement_id=event.announcement_id,
        invited=invited,
        occurrence_id=occurrence.id if occurrence else None,
        counts=counts,
        created_at=event.created_at,
        updated_at=event.updated_at,
    )


async def attendance_rate(session: AsyncSession, event_id: int, now: datetime) -> float | None:
    """Came / said yes, over the occurrences that have started; None before any."""
    query = (
        select(
            func.sum(ATTENDED),
            func.count().filter(col(EventRsvp.answer) == "yes"),
        )
        .join(EventOccurrence, col(EventOccurrence.id) == col(EventRsvp.occurrence_id))
        .where(col(EventRsvp.event_id) == event_id, col(EventOccurrence.starts_at) <= now)
    )
    came, said_yes = (await session.exec(query)).one()
    if not said_yes:
        return None
    return round(int(came or 0) / int(said_yes), 3)


async def event_detail(
    session: AsyncSession,
    event: Event,
    now: datetime,
    occurrence_id: int | None = None,
    notified: int | None = None,
) -> EventDetail:
    assert event.id is not None
    summary = await event_public(session, event, now, occurrence_id)
    occurrences = (
        await session.exec(
            select(EventOccurrence)
            .where(col(EventOccurrence.event_id) == event.id)
            .order_by(col(EventOccurrence.starts_at))
            .limit(MAX_LISTED_OCCURRENCES)
        )
    ).all()
    by_channel = (
        await counts_by_channel(session, summary.occurrence_id) if summary.occurrence_id else {}
    )
    return EventDetail(
        **summary.model_dump(),
        occurrences=[Occurrence(id=o.id or 0, starts_at=o.starts_at) for o in occurrences],
        by_channel=by_channel,
        attendance_rate=await attendance_rate(session, event.id, now),
        notified=notified,
    )
