"""Events and calls: intake calls, trainings, weekly calls. Invitations go out like an
announcement; numbered replies are RSVPs (routing/organizing/questions.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from sqlmodel import col, select

from gateway.api.event_create import create_event
from gateway.api.event_schemas import EventCreate, EventDetail, EventPublic, RsvpPublic
from gateway.api.event_views import (
    event_detail,
    event_public,
    event_scope,
    event_summaries,
    visible_event,
)
from gateway.api.ids import IdempotencyKey, IdPath, IdQuery
from gateway.api.pagination import (
    DEFAULT_LIMIT,
    Cursor,
    Limit,
    Page,
    decode_cursor,
    encode_cursor,
    split_page,
)
from gateway.api.problems import errors
from gateway.api.scope import SessionDep
from gateway.auth import AnyRole, Context
from routing.organizing.events import ics_of
from storage.models import Event, EventRsvp

router = APIRouter(tags=["events"])

NOT_FOUND = errors({404: "no such event"})


@router.post(
    "/events",
    status_code=status.HTTP_201_CREATED,
    response_model=EventPublic,
    responses={
        200: {"model": EventPublic, "description": "a replay of this Idempotency-Key"},
        **errors({409: "this Idempotency-Key was used with another request"}),
    },
)
async def post_event(
    payload: EventCreate,
    ctx: Context,
    session: SessionDep,
    principal: AnyRole,
    response: Response,
    key: IdempotencyKey = None,
) -> EventPublic:
    """Create the event and invite its audience over each supporter's channel (quiet hours
    apply): title, start in their timezone, link, "1) Yes 2) No 3) Maybe"."""
    await session.close()  # create_event runs its own transactions
    event, created = await create_event(ctx, principal, payload, key)
    if not created:
        response.status_code = status.HTTP_200_OK
    async with ctx.sessions() as fresh:
        return await event_public(fresh, event, ctx.clock())


@router.get("/events", response_model=Page[EventPublic])
async def list_events(
    ctx: Context,
    session: SessionDep,
    principal: AnyRole,
    kind: str | None = None,
    upcoming: Annotated[bool, Query(description="only events not yet over")] = False,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[EventPublic]:
    """By start time, soonest first."""
    now = ctx.clock()
    query = select(Event).order_by(col(Event.starts_at), col(Event.id)).limit(limit + 1)
    key = decode_cursor(cursor, (datetime, int))
    if key is not None:
        # The range first, so the walk of ix_events_starts_at starts at the cursor.
        query = query.where(
            col(Event.starts_at) >= key[0],
            (col(Event.starts_at) > key[0]) | (col(Event.id) > key[1]),
        )
    scope = event_scope(principal)
    if scope is not None:
        query = query.where(scope)
    if kind:
        query = query.where(col(Event.kind) == kind)
    if upcoming:
        query = query.where(col(Event.cancelled_at).is_(None), col(Event.starts_at) > now)
    rows, more = split_page(list((await session.exec(query)).all()), limit)
    items = await event_summaries(session, rows, now)
    last = rows[-1] if rows and more else None
    return Page(items=items, next_cursor=encode_cursor(last.starts_at, last.id) if last else None)


@router.get("/events/{event_id}.ics", responses=NOT_FOUND, response_class=Response)
async def get_event_ics(
    event_id: IdPath, ctx: Context, session: SessionDep, principal: AnyRole
) -> Response:
    """The event as an iCalendar file (RFC 5545)."""
    event = await visible_event(session, principal, event_id)
    return Response(
        ics_of(event, ctx.settings),
        media_type="text/calendar",
        headers={"Content-Disposition": f'attachment; filename="event-{event.id}.ics"'},
    )


@router.get("/events/{event_id}", response_model=EventDetail, responses=NOT_FOUND)
async def get_event(
    event_id: IdPath,
    ctx: Context,
    session: SessionDep,
    principal: AnyRole,
    occurrence_id: IdQuery = None,
) -> EventDetail:
    """Counts are of `occurrence_id`, else of the next occurrence not yet over."""
    event = await visible_event(session, principal, event_id)
    return await event_detail(session, event, ctx.clock(), occurrence_id)


@router.get("/events/{event_id}/rsvps", response_model=Page[RsvpPublic], responses=NOT_FOUND)
async def list_rsvps(
    event_id: IdPath,
    session: SessionDep,
    principal: AnyRole,
    occurrence_id: IdQuery = None,
    answer: Annotated[str | None, Query(pattern="^(yes|no|maybe|waitlist|no_reply)$")] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[RsvpPublic]:
    """Every invitee and answer (of every occurrence unless one is named), by RSVP id."""
    await visible_event(session, principal, event_id)
    query = (
        select(EventRsvp)
        .where(col(EventRsvp.event_id) == event_id)
        .order_by(col(EventRsvp.id))
        .limit(limit + 1)
    )
    if occurrence_id is not None:
        query = query.where(col(EventRsvp.occurrence_id) == occurrence_id)
    if answer == "no_reply":
        query = query.where(col(EventRsvp.answer).is_(None))
    elif answer is not None:
        query = query.where(col(EventRsvp.answer) == answer)
    key = decode_cursor(cursor, (int,))
    if key is not None:
        query = query.where(col(EventRsvp.id) > key[0])
    rows, more = split_page(list((await session.exec(query)).all()), limit)
    last = rows[-1].id if rows and more else None
    return Page(
        items=[
            RsvpPublic(
                supporter_id=r.supporter_id,
                occurrence_id=r.occurrence_id,
                answer=r.answer,
                answered_at=r.answered_at,
                attended=r.attended,
                channel=r.channel,
                invited_at=r.invited_at,
            )
            for r in rows
        ],
        next_cursor=encode_cursor(last) if last else None,
    )
