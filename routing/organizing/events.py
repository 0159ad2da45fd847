"""Events (calls, trainings, intake calls): reading them, their occurrences and RSVPs, and
the values the texts and the calendar file are made from."""

from __future__ import annotations

from datetime import datetime
from email.utils import parseaddr
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from routing.config import RoutingSettings
from routing.organizing.event_ics import event_ics
from routing.organizing.event_text import EventFacts
from routing.outbound.compose import email_domain
from storage.models import Event, EventOccurrence, EventRsvp

EVENT_KINDS = ("call", "training", "intake")
ICS_TYPE = "text/calendar"


def facts_of(event: Event, starts_at: datetime | None = None) -> EventFacts:
    return EventFacts(
        title=event.title,
        starts_at=starts_at or event.starts_at,
        duration_minutes=event.duration_minutes,
        location_url=event.location_url,
        description=event.description,
    )


def event_uid(event: Event, settings: RoutingSettings) -> str:
    """The calendar UID: the same in every file about this event, so updates replace it."""
    return f"rallypoint-event-{event.id}@{email_domain(settings)}"


def sequence_of(event: Event) -> int:
    """The calendar SEQUENCE: grows with each change (seconds since it was created)."""
    return max(0, int((event.updated_at - event.created_at).total_seconds()))


def ics_of(event: Event, settings: RoutingSettings, *, method: str = "PUBLISH") -> str:
    return event_ics(
        facts_of(event),
        uid=event_uid(event, settings),
        recurrence=event.recurrence,
        stamp=event.updated_at,
        sequence=sequence_of(event),
        method=method,
        cancelled=event.cancelled_at is not None,
        organizer=parseaddr(settings.smtp_from)[1] or None if settings.smtp_from else None,
    )


def ics_attachment(event: Event, settings: RoutingSettings, method: str) -> dict[str, Any]:
    """A message attachment carrying the calendar file itself (email sends it; other
    channels ignore it). Provider-neutral: channels/base.py's `FileAttachment`."""
    return {
        "filename": "invite.ics",
        "content_type": f"{ICS_TYPE}; method={method}",
        "text": ics_of(event, settings, method=method),
    }


async def event_of_announcement(session: AsyncSession, announcement_id: int) -> Event | None:
    query = select(Event).where(col(Event.announcement_id) == announcement_id)
    return (await session.exec(query)).first()


async def first_occurrence(session: AsyncSession, event_id: int) -> EventOccurrence | None:
    query = (
        select(EventOccurrence)
        .where(col(EventOccurrence.event_id) == event_id)
        .order_by(col(EventOccurrence.starts_at))
        .limit(1)
    )
    return (await session.exec(query)).first()


async def next_occurrence(
    session: AsyncSession, event_id: int, now: datetime
) -> EventOccurrence | None:
    """The first occurrence that has not started by `now`."""
    query = (
        select(EventOccurrence)
        .where(col(EventOccurrence.event_id) == event_id, col(EventOccurrence.starts_at) > now)
        .order_by(col(EventOccurrence.starts_at))
        .limit(1)
    )
    return (await session.exec(query)).first()


async def rsvp_of(session: AsyncSession, occurrence_id: int, supporter_id: int) -> EventRsvp | None:
    query = select(EventRsvp).where(
        col(EventRsvp.occurrence_id) == occurrence_id,
        col(EventRsvp.supporter_id) == supporter_id,
    )
    return (await session.exec(query)).first()


async def answer_count(
    session: AsyncSession, occurrence_id: int, answer: str, *, besides: int | None = None
) -> int:
    query = (
        select(func.count())
        .select_from(EventRsvp)
        .where(col(EventRsvp.occurrence_id) == occurrence_id, col(EventRsvp.answer) == answer)
    )
    if besides is not None:
        query = query.where(col(EventRsvp.supporter_id) != besides)
    return int((await session.exec(query)).one())
