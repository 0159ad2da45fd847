"""Events in the console: the list, the form that creates one (and invites its audience
through POST /api/v1/events's create_event), editing, cancelling, and an event's page with
its RSVP counts (by answer and by channel). The attendance checklist is in
event_attendance.py."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import RedirectResponse

from gateway.api.event_actions import cancel_and_tell
from gateway.api.event_create import create_event
from gateway.api.event_views import event_detail, visible_event
from gateway.api.events import get_event_ics, list_events
from gateway.api.ids import IdPath
from gateway.api.scope import SessionDep
from gateway.auth import Context
from gateway.console.audience_form import (
    KEY_PREFIX,
    AudienceChoice,
    FormError,
    new_idempotency_key,
    picker_context,
    team_options,
    text,
)
from gateway.console.event_form import EventInput, create_body, patch_body
from gateway.console.security import CurrentUser
from gateway.console.sessions import ConsoleUser
from gateway.console.templating import render
from routing.organizing.checkins import org_timezone
from routing.organizing.event_changes import change_event
from routing.organizing.event_schedule import InvalidRecurrence
from routing.organizing.events import EVENT_KINDS

router = APIRouter()


@router.get("/events", include_in_schema=False)
async def event_list(
    request: Request,
    user: CurrentUser,
    ctx: Context,
    session: SessionDep,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    page = await list_events(ctx, session, user.principal, limit=50, cursor=cursor)
    context = {"events": page.items, "next_cursor": page.next_cursor, "zone": org_timezone(ctx)}
    return render(request, "events.html", context)


async def _form_page(
    request: Request,
    user: ConsoleUser,
    ctx: Context,
    session: SessionDep,
    *,
    given: EventInput | None = None,
    choice: AudienceChoice | None = None,
    event_id: int | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    zone = org_timezone(ctx)
    context = {
        "given": given or EventInput(),
        "kinds": EVENT_KINDS,
        "event_id": event_id,
        "error": error,
        "key": new_idempotency_key(),
        **picker_context(await team_options(session, user), choice or AudienceChoice(), user, zone),
    }
    return render(request, "event_form.html", context, status_code=status_code)


@router.get("/events/new", include_in_schema=False)
async def new_event(
    request: Request, user: CurrentUser, ctx: Context, session: SessionDep
) -> Response:
    return await _form_page(request, user, ctx, session)


@router.post("/events", include_in_schema=False)
async def post_event(
    request: Request, user: CurrentUser, ctx: Context, session: SessionDep
) -> Response:
    form = await request.form()
    given = EventInput.from_form(form)
    choice = AudienceChoice.from_form(form, user)
    key = text(form, "idempotency_key", 200)
    try:
        if not key.startswith(KEY_PREFIX):
            raise FormError("The form expired; send it again.")
        payload = create_body(given, choice, org_timezone(ctx))
    except (FormError, InvalidRecurrence) as exc:
        return await _form_page(
            request, user, ctx, session, given=given, choice=choice, error=str(exc), status_code=422
        )
    await session.close()  # create_event runs its own transactions
    event, _ = await create_event(ctx, user.principal, payload, key)
    return RedirectResponse(f"/console/events/{event.id}", status_code=status.HTTP_303_SEE_OTHER)


@router.get("/events/{event_id:int}", include_in_schema=False)
async def event_page(
    event_id: IdPath, request: Request, user: CurrentUser, ctx: Context, session: SessionDep
) -> Response:
    event = await visible_event(session, user.principal, event_id)
    detail = await event_detail(session, event, ctx.clock())
    context = {"event": detail, "zone": org_timezone(ctx), "done": request.query_params.get("done")}
    return render(request, "event.html", context)


@router.get("/events/{event_id:int}/edit", include_in_schema=False)
async def edit_event(
    event_id: IdPath, request: Request, user: CurrentUser, ctx: Context, session: SessionDep
) -> Response:
    event = await visible_event(session, user.principal, event_id)
    given = EventInput.of(event, org_timezone(ctx))
    return await _form_page(request, user, ctx, session, given=given, event_id=event_id)


@router.post("/events/{event_id:int}/edit", include_in_schema=False)
async def post_edit(
    event_id: IdPath, request: Request, user: CurrentUser, ctx: Context, session: SessionDep
) -> Response:
    event = await visible_event(session, user.principal, event_id)
    form = await request.form()
    given = EventInput.from_form(form)
    try:
        if event.cancelled_at is not None:
            raise FormError("This event was cancelled.")
        changes = patch_body(given, org_timezone(ctx))
    except FormError as exc:
        return await _form_page(
            request,
            user,
            ctx,
            session,
            given=given,
            event_id=event_id,
            error=str(exc),
            status_code=422,
        )
    changed = await change_event(session, ctx, event, changes)
    await session.commit()
    done = f"saved, {changed.notified} told" if changed.notified else "saved"
    return RedirectResponse(
        f"/console/events/{event_id}?done={done}", status_code=status.HTTP_303_SEE_OTHER
    )


@router.post("/events/{event_id:int}/cancel", include_in_schema=False)
async def post_cancel(
    event_id: IdPath, user: CurrentUser, ctx: Context, session: SessionDep
) -> Response:
    event = await visible_event(session, user.principal, event_id)
    done = "already cancelled"
    if event.cancelled_at is None:
        done = f"cancelled, {await cancel_and_tell(ctx, session, event)} told"
    return RedirectResponse(
        f"/console/events/{event_id}?done={done}", status_code=status.HTTP_303_SEE_OTHER
    )


@router.get("/events/{event_id:int}.ics", include_in_schema=False)
async def event_ics(
    event_id: IdPath, user: CurrentUser, ctx: Context, session: SessionDep
) -> Response:
    return await get_event_ics(event_id, ctx, session, user.principal)
