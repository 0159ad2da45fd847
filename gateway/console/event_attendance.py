"""The attendance checklist: everyone invited to (or answering) the event's current
occurrence, those who said yes first, one checkbox each, saved at once. Made for a phone
held at the door."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response, status
from fastapi.responses import RedirectResponse
from sqlalchemy import case
from sqlmodel import col, select

from gateway.api.event_views import counted_occurrence, visible_event
from gateway.api.ids import IdPath
from gateway.api.scope import SessionDep, supporter_scope
from gateway.auth import Context
from gateway.console.security import CurrentUser
from gateway.console.templating import render
from routing.organizing.checkins import org_timezone
from routing.organizing.event_changes import mark_attendance
from storage.models import EventRsvp, Supporter

router = APIRouter()
# People listed on the checklist; a bigger event is marked through the API.
MAX_LISTED = 1000
ORDER = case(
    (col(EventRsvp.answer) == "yes", 0),
    (col(EventRsvp.answer) == "maybe", 1),
    (col(EventRsvp.answer) == "waitlist", 2),
    (col(EventRsvp.answer).is_(None), 3),
    else_=4,
)


async def _checklist(
    session: SessionDep, user: CurrentUser, occurrence_id: int
) -> list[tuple[EventRsvp, Supporter]]:
    query = (
        select(EventRsvp, Supporter)
        .join(Supporter, col(Supporter.id) == col(EventRsvp.supporter_id))
        .where(col(EventRsvp.occurrence_id) == occurrence_id)
        .order_by(ORDER, col(Supporter.name), col(Supporter.id))
        .limit(MAX_LISTED)
    )
    scope = supporter_scope(user.principal)
    if scope is not None:
        query = query.where(scope)
    return list((await session.exec(query)).all())


@router.get("/events/{event_id:int}/attendance", include_in_schema=False)
async def attendance_page(
    event_id: IdPath, request: Request, user: CurrentUser, ctx: Context, session: SessionDep
) -> Response:
    event = await visible_event(session, user.principal, event_id)
    occurrence = await counted_occurrence(session, event, ctx.clock())
    if occurrence is None or occurrence.id is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such occurrence")
    rows = await _checklist(session, user, occurrence.id)
    context = {
        "event": event,
        "occurrence": occurrence,
        "rows": rows,
        "zone": org_timezone(ctx),
        "saved": request.query_params.get("saved"),
    }
    return render(request, "event_attendance.html", context)


@router.post("/events/{event_id:int}/attendance", include_in_schema=False)
async def save_attendance(
    event_id: IdPath, request: Request, user: CurrentUser, ctx: Context, session: SessionDep
) -> Response:
    event = await visible_event(session, user.principal, event_id)
    now = ctx.clock()
    occurrence = await counted_occurrence(session, event, now)
    if occurrence is None or occurrence.id is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such occurrence")
    listed = {rsvp.supporter_id for rsvp, _ in await _checklist(session, user, occurrence.id)}
    form = await request.form()
    came = {
        int(value)
        for value in form.getlist("came")
        if isinstance(value, str) and value.isdigit() and int(value) in listed
    }
    if came:
        await mark_attendance(session, event, occurrence, sorted(came), now, attended=True)
    if listed - came:
        await mark_attendance(
            session, event, occurrence, sorted(listed - came), now, attended=False
        )
    await session.commit()
    return RedirectResponse(
        f"/console/events/{event_id}/attendance?saved={len(came)}",
        status_code=status.HTTP_303_SEE_OTHER,
    )
