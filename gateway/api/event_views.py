"""Reading events for the API and the console: what a key may see, and the answers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gateway.api.event_schemas import EventDetail, EventPublic, Occurrence
from gateway.api.scope import lead_team, not_found
from gateway.auth import Principal
from routing.organizing.event_counts import (
    ATTENDED,
    answer_tallies,
    counts_by_channel,
    occurrence_counts,
)
from storage.models import Event, EventOccurrence, EventRsvp

MAX_LISTED_OCCURRENCES = 200


def event_scope(principal: Principal) -> Any | None:
    """The condition on events a team lead is confined to (their team's; not org-wide
    ones); None for roles that see every event."""
    own = lead_team(principal)
    return None if own is None else col(Event.team_scope_id) == own


async def visible_event(session: AsyncSession, principal: Principal, event_id: int) -> Event:
    """The event, if `principal` may see it (team leads: their team's only); else 404."""
    query = select(Event).where(col(Event.id) == event_id)
    scope = event_scope(principal)
    if scope is not None:
        query = query.where(scope)
    event = (await session.exec(query)).first()
    if event is None:
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


def _occurrence_id(event_id: Any, newest_first: bool, after: Any = None) -> Any:
    """The id of an event's first (or last) occurrence, optionally starting after `after`:
    a correlated subquery read through uq_event_occurrence_start (event_id, starts_at)."""
    query = select(col(EventOccurrence.id)).where(col(EventOccurrence.event_id) == event_id)
    if after is not None:
        query = query.where(col(EventOccurrence.starts_at) > after)
    order = col(EventOccurrence.starts_at)
    return query.order_by(order.desc() if newest_first else order).limit(1).scalar_subquery()


async def _page_occurrences(
    session: AsyncSession, events: Sequence[Event], now: datetime
) -> dict[int, tuple[int | None, int | None]]:
    """{event id: (counted occurrence id, first occurrence id)} of every event in one
    statement: counted is the next occurrence not yet over, else the last."""
    ends = {e.duration_minutes: now - _duration(e) for e in events}
    not_over = case(ends, value=col(Event.duration_minutes))
    query = select(
        col(Event.id),
        func.coalesce(
            _occurrence_id(col(Event.id), False, not_over), _occurrence_id(col(Event.id), True)
        ),
        _occurrence_id(col(Event.id), False),
    ).where(col(Event.id).in_([e.id for e in events]))
    rows = (await session.exec(query)).all()
    return {eid or 0: (counted, first) for eid, counted, first in rows}


async def event_summaries(
    session: AsyncSession, events: Sequence[Event], now: datetime, occurrence_id: int | None = None
) -> list[EventPublic]:
    """The API's view of each event with its counts, in four statements whatever the number
    of events (occurrences, their start times, and one GROUP BY of the RSVPs)."""
    if not events:
        return []
    picked = await _page_occurrences(session, events, now)
    if occurrence_id is not None:  # one event, its occurrence named (404 if not its own)
        (event,) = events
        named = await counted_occurrence(session, event, now, occurrence_id)
        picked[event.id or 0] = (named.id if named else None, picked[event.id or 0][1])
    ids = {i for pair in picked.values() for i in pair if i is not None}
    starts = dict(
        (
            await session.exec(
                select(col(EventOccurrence.id), col(EventOccurrence.starts_at)).where(
                    col(EventOccurrence.id).in_(ids)
                )
            )
        ).all()
    )
    tallies = await answer_tallies(session, ids)
    out = []
    for event in events:
        assert event.id is not None
        counted, first = picked.get(event.id, (None, None))
        invited = sum(n for n, _ in tallies.get(first, {}).values()) if first else 0
        counts = occurrence_counts(tallies.get(counted, {}) if counted else {}, invited)
        starts_at = starts.get(counted, event.starts_at) if counted else event.starts_at
        out.append(_public(event, counted, starts_at, invited, counts))
    return out


def _public(
    event: Event,
    occurrence_id: int | None,
    starts_at: datetime,
    invited: int,
    counts: dict[str, int],
) -> EventPublic:
    assert event.id is not None
    return EventPublic(
        id=event.id,
        title=event.title,
        kind=event.kind,
        starts_at=starts_at,
        duration_minutes=event.duration_minutes,
        location_url=event.location_url,
        description=event.description,
        capacity=event.capacity,
        audience=event.audience or {},
        recurrence=event.recurrence,
        cancelled_at=event.cancelled_at,
        announcement_id=event.announcement_id,
        invited=invited,
        occurrence_id=occurrence_id,
        counts=counts,
        created_at=event.created_at,
        updated_at=event.updated_at,
    )


async def event_public(
    session: AsyncSession, event: Event, now: datetime, occurrence_id: int | None = None
) -> EventPublic:
    return (await event_summaries(session, [event], now, occurrence_id))[0]


async def attendance_rate(session: AsyncSession, event_id: int, now: datetime) -> float | None:
    """Came / said yes, over the occurrences that have started; None before any."""
    query = (
        select(
            func.sum(ATTENDED),
            func.count().filter(col(EventRsvp.answer) == "yes"),
        )
        .select_from(EventOccurrence)
        .join(EventRsvp, col(EventRsvp.occurrence_id) == col(EventOccurrence.id))
        .where(col(EventOccurrence.event_id) == event_id, col(EventOccurrence.starts_at) <= now)
    )  # the started occurrences, then their RSVPs from ix_event_rsvps_tally alone
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
