"""The events a supporter was invited to, answered and came to (their profile shows it)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gateway.api.event_views import event_scope
from gateway.api.ids import IdPath
from gateway.api.problems import errors
from gateway.api.scope import SessionDep, visible_supporter
from gateway.auth import AnyRole, Principal
from storage.models import Event, EventOccurrence, EventRsvp

router = APIRouter(tags=["events"])
LIMIT = 200


class SupporterEvent(BaseModel):
    event_id: int
    occurrence_id: int
    title: str
    kind: str
    starts_at: datetime
    answer: str | None
    attended: bool
    cancelled: bool


class SupporterEvents(BaseModel):
    items: list[SupporterEvent]
    attended: int


async def events_of(
    session: AsyncSession, principal: Principal, supporter_id: int
) -> SupporterEvents:
    """Their RSVPs to the events `principal` may see (team leads: their team's only),
    latest occurrence first (at most LIMIT), and how many of those they came to."""
    query = (
        select(EventRsvp, EventOccurrence, Event)
        .join(EventOccurrence, col(EventOccurrence.id) == col(EventRsvp.occurrence_id))
        .join(Event, col(Event.id) == col(EventRsvp.event_id))
        .where(col(EventRsvp.supporter_id) == supporter_id)
    )
    scope = event_scope(principal)
    if scope is not None:
        query = query.where(scope)
    order = (col(EventOccurrence.starts_at).desc(), col(EventRsvp.id).desc())
    rows = (await session.exec(query.order_by(*order).limit(LIMIT))).all()
    items = [
        SupporterEvent(
            event_id=event.id or 0,
            occurrence_id=occurrence.id or 0,
            title=event.title,
            kind=event.kind,
            starts_at=occurrence.starts_at,
            answer=rsvp.answer,
            attended=rsvp.attended,
            cancelled=event.cancelled_at is not None,
        )
        for rsvp, occurrence, event in rows
    ]
    return SupporterEvents(items=items, attended=sum(item.attended for item in items))


@router.get(
    "/supporters/{supporter_id}/events",
    response_model=SupporterEvents,
    responses=errors({404: "no such supporter"}),
)
async def get_supporter_events(
    supporter_id: IdPath, session: SessionDep, principal: AnyRole
) -> SupporterEvents:
    """Events they were invited to or came to, with their answer, latest first."""
    await visible_supporter(session, principal, supporter_id)
    return await events_of(session, principal, supporter_id)
