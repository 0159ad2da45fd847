"""Changing events: PATCH (a new time or link is told to those who said yes or maybe),
cancel (a notice to them), attendance, and follow-ups to who came, who did not, and who
never answered."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status
from fastapi.exceptions import RequestValidationError
from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gateway.api.event_schemas import (
    AttendanceIn,
    AttendanceOut,
    EventDetail,
    EventPatch,
    FollowUpIn,
    FollowUpOut,
)
from gateway.api.event_views import counted_occurrence, event_detail, visible_event
from gateway.api.ids import IdPath
from gateway.api.problems import errors
from gateway.api.scope import SessionDep, supporter_scope
from gateway.auth import AnyRole, Context, Principal
from gateway.context import GatewayContext
from routing.organizing.event_changes import cancel_event, change_event, mark_attendance
from routing.organizing.event_notices import follow_up_group, recipients, send_notice
from routing.outbound.cancel import NothingToCancel, cancel_announcement
from routing.outbound.queue import PRIORITY_BULK
from storage.models import Event, Supporter

router = APIRouter(tags=["events"])
NOT_FOUND = errors({404: "no such event"})
CANCELLED = errors({404: "no such event", 409: "the event was cancelled"})


def _refuse_cancelled(event: Event) -> None:
    if event.cancelled_at is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, "the event was cancelled")


@router.patch("/events/{event_id}", response_model=EventDetail, responses=CANCELLED)
async def patch_event(
    event_id: IdPath, payload: EventPatch, ctx: Context, session: SessionDep, principal: AnyRole
) -> EventDetail:
    """Change fields; a new `starts_at` or `location_url` is sent to those who said yes or
    maybe (`notified`), with the updated calendar file by email."""
    event = await visible_event(session, principal, event_id)
    _refuse_cancelled(event)
    changes = payload.model_dump(exclude_unset=True)
    for name in ("title", "starts_at", "duration_minutes", "kind"):
        if name in changes and changes[name] is None:
            raise RequestValidationError(
                [{"loc": ("body", name), "msg": "may not be null", "type": "value_error"}]
            )
    changed = await change_event(session, ctx, event, changes)
    await session.commit()
    await session.refresh(event)
    return await event_detail(session, event, ctx.clock(), notified=changed.notified)


@router.post("/events/{event_id}/cancel", response_model=EventDetail, responses=CANCELLED)
async def post_cancel(
    event_id: IdPath, ctx: Context, session: SessionDep, principal: AnyRole
) -> EventDetail:
    """Cancel: invitations not yet sent are stopped, and those who said yes or maybe are
    told (`notified`). Again on a cancelled event → 409."""
    event = await visible_event(session, principal, event_id)
    _refuse_cancelled(event)
    notified = await cancel_and_tell(ctx, session, event)
    await session.refresh(event)
    return await event_detail(session, event, ctx.clock(), notified=notified)


async def cancel_and_tell(ctx: GatewayContext, session: AsyncSession, event: Event) -> int:
    """What POST /events/{id}/cancel does (the console's "Cancel event" too), committed:
    invitations not yet sent are stopped, yes and maybe are told; the number told."""
    notified = await cancel_event(session, ctx, event)
    if event.announcement_id is not None:
        try:
            await cancel_announcement(session, event.announcement_id, ctx.clock())
        except NothingToCancel:
            pass  # every invitation has gone out already
    await session.commit()
    if event.announcement_id is not None:
        # Rows this process's dispatcher already claimed are not sent after all.
        ctx.cancelled_announcements.add(event.announcement_id)
    return notified


async def _checked_supporters(
    session: AsyncSession, principal: Principal, supporter_ids: list[int]
) -> None:
    """Every id names a supporter the key may see; else 422 naming supporter_ids."""
    query = select(func.count()).select_from(Supporter).where(col(Supporter.id).in_(supporter_ids))
    scope = supporter_scope(principal)
    if scope is not None:
        query = query.where(scope)
    if int((await session.exec(query)).one()) != len(supporter_ids):
        raise RequestValidationError(
            [
                {
                    "loc": ("body", "supporter_ids"),
                    "msg": "some ids name no supporter you can see",
                    "type": "value_error",
                }
            ]
        )


@router.post("/events/{event_id}/attendance", response_model=AttendanceOut, responses=NOT_FOUND)
async def post_attendance(
    event_id: IdPath,
    payload: AttendanceIn,
    ctx: Context,
    session: SessionDep,
    principal: AnyRole,
) -> AttendanceOut:
    """Mark who came (of `occurrence_id`, else the current one); `attended: false` undoes.
    Someone who came uninvited is recorded too. Attendance counts as activity for the
    check-ins' inactivity (GET /checkins/due)."""
    event = await visible_event(session, principal, event_id)
    await _checked_supporters(session, principal, payload.supporter_ids)
    now = ctx.clock()
    occurrence = await counted_occurrence(session, event, now, payload.occurrence_id)
    if occurrence is None or occurrence.id is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such occurrence")
    marked = await mark_attendance(
        session, event, occurrence, payload.supporter_ids, now, payload.attended
    )
    await session.commit()
    return AttendanceOut(occurrence_id=occurrence.id, marked=marked)


@router.post(
    "/events/{event_id}/follow-up",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=FollowUpOut,
    responses=NOT_FOUND,
)
async def post_follow_up(
    event_id: IdPath, payload: FollowUpIn, ctx: Context, session: SessionDep, principal: AnyRole
) -> FollowUpOut:
    """Send `body` to those who said yes and did not come (`no_show`), who came
    (`attended`) or who never answered (`no_reply`), of `occurrence_id` or the current
    one. Quiet hours apply."""
    event = await visible_event(session, principal, event_id)
    assert event.id is not None
    occurrence = await counted_occurrence(session, event, ctx.clock(), payload.occurrence_id)
    if occurrence is None or occurrence.id is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such occurrence")
    group = follow_up_group(payload.to)
    if payload.to == "no_reply":
        # Invitees (rows of the first occurrence) who gave this occurrence no answer.
        who = await recipients(session, event.id, group)
    else:
        who = await recipients(session, event.id, group, occurrence_ids=[occurrence.id])
    queued = await send_notice(
        session,
        ctx,
        who,
        lambda _tz: payload.body,
        kind="event_follow_up",
        subject=event.title,
        priority=PRIORITY_BULK,
    )
    await session.commit()
    return FollowUpOut(recipients=queued)
