"""Check-ins in the console: the list, create and edit (the REST API's add_checkin and
update_checkin), and "Due a one-on-one" (GET /api/v1/checkins/due's query), each supporter
with a "Message" action opening their conversation (created on first use)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from sqlmodel import col, select
from starlette.datastructures import FormData

from gateway.api.checkins import (
    CheckinCreate,
    CheckinPatch,
    add_checkin,
    due_for_outreach,
    list_checkins,
    update_checkin,
    visible_checkin,
)
from gateway.api.ids import IdPath
from gateway.api.pagination import MAX_LIMIT
from gateway.api.scope import SessionDep, visible_supporter
from gateway.auth import Context
from gateway.console.audience_form import FormError, team_options, text
from gateway.console.security import CurrentUser
from gateway.console.sessions import ConsoleUser
from gateway.console.templating import render
from routing.organizing.checkins import org_timezone
from storage.models import Conversation
from storage.queries import conversation_for

router = APIRouter()
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
FIELDS = ("team", "weekday", "local_time", "timezone", "prompt", "inactive_days", "nudge_text")


@router.get("/checkins", include_in_schema=False)
async def checkin_list(
    request: Request, user: CurrentUser, ctx: Context, session: SessionDep
) -> Response:
    found = await list_checkins(user.principal, session, ctx)
    return render(request, "checkins.html", {"checkins": found.items, "weekdays": WEEKDAYS})


async def _form(
    request: Request,
    user: ConsoleUser,
    ctx: Context,
    session: SessionDep,
    values: dict[str, str],
    *,
    checkin_id: int | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    context = {
        "values": values,
        "checkin_id": checkin_id,
        "teams": await team_options(session, user),
        "weekdays": WEEKDAYS,
        "org_zone": org_timezone(ctx).key,
        "error": error,
    }
    return render(request, "checkin_form.html", context, status_code=status_code)


def _typed(form: FormData) -> dict[str, str]:
    return {name: text(form, name, 4096) for name in FIELDS}


def _fields(values: dict[str, str]) -> dict[str, Any]:
    """The REST body's fields from the form (empty timezone / nudge: the defaults)."""
    weekday, days = values["weekday"].strip(), values["inactive_days"].strip()
    if not weekday.isdigit():
        raise FormError("Choose a weekday.")
    if not days.isdigit():
        raise FormError("Quiet for (days): give a whole number of days.")
    return {
        "weekday": int(weekday),
        "local_time": values["local_time"],
        "timezone": values["timezone"].strip() or None,
        "prompt": values["prompt"],
        "inactive_days": int(days),
        "nudge_text": values["nudge_text"].strip() or None,
    }


def _explain(exc: ValidationError) -> FormError:
    first = exc.errors()[0]
    field = str(first["loc"][0]).replace("_", " ") if first["loc"] else "form"
    return FormError(f"{field.capitalize()}: {first['msg']}")


@router.get("/checkins/new", include_in_schema=False)
async def new_checkin(
    request: Request, user: CurrentUser, ctx: Context, session: SessionDep
) -> Response:
    values = dict.fromkeys(FIELDS, "") | {"inactive_days": "14", "weekday": "0"}
    if user.user.team_id is not None:
        values["team"] = str(user.user.team_id)
    return await _form(request, user, ctx, session, values)


@router.post("/checkins", include_in_schema=False)
async def create(
    request: Request, user: CurrentUser, ctx: Context, session: SessionDep
) -> Response:
    values = _typed(await request.form())
    try:
        if not values["team"].strip():
            raise FormError("Choose a team.")
        try:
            body = CheckinCreate(**_fields(values))
        except ValidationError as exc:
            raise _explain(exc) from None
    except FormError as exc:
        return await _form(request, user, ctx, session, values, error=str(exc), status_code=422)
    await add_checkin(ctx, session, user.principal, values["team"].strip(), body)
    return RedirectResponse("/console/checkins?saved=1", status_code=status.HTTP_303_SEE_OTHER)


@router.get("/checkins/{checkin_id:int}/edit", include_in_schema=False)
async def edit(
    checkin_id: IdPath, request: Request, user: CurrentUser, ctx: Context, session: SessionDep
) -> Response:
    checkin = await visible_checkin(session, user.principal, checkin_id)
    values = {
        "team": str(checkin.team_id),
        "weekday": str(checkin.weekday),
        "local_time": checkin.local_time,
        "timezone": checkin.timezone or "",
        "prompt": checkin.prompt,
        "inactive_days": str(checkin.inactive_days),
        "nudge_text": checkin.nudge_text or "",
    }
    return await _form(request, user, ctx, session, values, checkin_id=checkin_id)


@router.post("/checkins/{checkin_id:int}", include_in_schema=False)
async def save(
    checkin_id: IdPath, request: Request, user: CurrentUser, ctx: Context, session: SessionDep
) -> Response:
    await visible_checkin(session, user.principal, checkin_id)  # 404 before reading input
    values = _typed(await request.form())
    try:
        try:
            body = CheckinPatch(**_fields(values))
        except ValidationError as exc:
            raise _explain(exc) from None
    except FormError as exc:
        return await _form(
            request,
            user,
            ctx,
            session,
            values,
            checkin_id=checkin_id,
            error=str(exc),
            status_code=422,
        )
    # Every field is on the form, so an emptied timezone or nudge goes back to its default.
    await update_checkin(ctx, session, user.principal, checkin_id, body)
    return RedirectResponse("/console/checkins?saved=1", status_code=status.HTTP_303_SEE_OTHER)


@router.get("/checkins/due", include_in_schema=False)
async def due(
    request: Request,
    user: CurrentUser,
    ctx: Context,
    session: SessionDep,
    days: Annotated[int | None, Query(ge=1, le=3650)] = None,
) -> Response:
    """Supporters due a one-on-one, quietest first, each with a "Message" action."""
    # The quietest MAX_LIMIT; the API pages through the rest.
    found = await due_for_outreach(user.principal, session, ctx, None, days, MAX_LIMIT, None)
    ids = [item.supporter_id for item in found.items]
    rows = await session.exec(
        select(Conversation.supporter_id, Conversation.id).where(
            col(Conversation.supporter_id).in_(ids)
        )
    )
    conversations = dict(rows.all())
    context = {"items": found.items, "days": found.days, "conversations": conversations}
    return render(request, "checkins_due.html", context)


@router.post("/checkins/due/{supporter_id:int}/message", include_in_schema=False)
async def message(
    supporter_id: IdPath, user: CurrentUser, ctx: Context, session: SessionDep
) -> Response:
    """Open the supporter's conversation, making it first if they have none yet."""
    await visible_supporter(session, user.principal, supporter_id)
    convo = await conversation_for(session, supporter_id, ctx.clock())
    await session.commit()
    return RedirectResponse(
        f"/console/conversations/{convo.id}", status_code=status.HTTP_303_SEE_OTHER
    )
