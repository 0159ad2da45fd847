"""The thread (GET /console/conversations/{id}): every message with channel, time and
delivery status; the reply box ("Reply", "Send") showing the channel the router will use
and why, with a live SMS segment count; resolve / reopen / snooze; assign; private notes;
saved replies. Opening it marks the conversation read (as POST …/read does). Every change
goes through the functions the REST API uses (routing/inbox, routing/outbound/one_on_one).
A team lead gets 404 for another team's conversation."""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Query, Request, Response, status
from fastapi.responses import HTMLResponse, RedirectResponse

from gateway.api.conversations import read_conversation
from gateway.api.ids import IdPath
from gateway.api.scope import SessionDep, lead_team, visible_conversation
from gateway.console.security import CurrentUser
from gateway.console.templating import render
from gateway.console.thread_data import segments_text, thread_data
from routing.inbox.notes import add_note
from routing.inbox.saved_replies import fill
from routing.inbox.state import InboxError, assign, set_status
from routing.outbound.one_on_one import CannotSend, send_one_on_one
from storage.field_values import values_by_supporter
from storage.models import MAX_ID, SavedReply, Supporter

router = APIRouter()
MAX_TEXT = 10_000
Text = Annotated[str, Form(max_length=MAX_TEXT)]


def _thread_url(conversation_id: int, anchor: str = "") -> str:
    return f"/console/conversations/{conversation_id}{anchor}"


def _back(conversation_id: int, anchor: str = "") -> RedirectResponse:
    return RedirectResponse(_thread_url(conversation_id, anchor), status.HTTP_303_SEE_OTHER)


async def _refused(
    request: Request,
    user: Any,
    session: SessionDep,
    conversation_id: IdPath,
    field: str,
    message: str,
    *,
    typed: str | None = None,
    status_code: int = 422,
) -> HTMLResponse:
    """Nothing of the refused action is kept; the thread again, the message by its field
    and what was typed still in it."""
    await session.rollback()
    return await _page(
        request,
        user,
        session,
        conversation_id,
        status_code=status_code,
        errors={field: message},
        typed=None if typed is None else {field: typed},
    )


async def _page(
    request: Request,
    user: Any,
    session: SessionDep,
    conversation_id: IdPath,
    *,
    status_code: int = 200,
    errors: dict[str, str] | None = None,
    typed: dict[str, str] | None = None,
    before: int | None = None,
    template: str = "thread.html",
) -> HTMLResponse:
    convo = await read_conversation(session, user.principal, conversation_id)
    data = await thread_data(session, request.app.state.ctx, user, convo, before=before)
    data["errors"] = errors or {}
    data["typed"] = {"reply": "", "note": "", "snooze": "", **(typed or {})}
    data["segments"] = segments_text(data["typed"]["reply"])
    return render(request, template, data, status_code=status_code)


@router.get("/conversations/{conversation_id}", include_in_schema=False)
async def thread(
    conversation_id: IdPath,
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    before: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    saved: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    fragment: Annotated[str, Query(max_length=16)] = "",
) -> Response:
    typed: dict[str, str] = {}
    if saved is not None:
        convo = await visible_conversation(session, user.principal, conversation_id)
        reply = await session.get(SavedReply, saved)
        supporter = await session.get(Supporter, convo.supporter_id)
        if reply is not None and supporter is not None:
            assert supporter.id is not None
            fields = (await values_by_supporter(session, [supporter.id]))[supporter.id]
            typed["reply"] = fill(reply.body, supporter.name, fields)
    template = "thread_messages.html" if fragment == "messages" else "thread.html"
    return await _page(
        request, user, session, conversation_id, typed=typed, before=before, template=template
    )


@router.post("/conversations/{conversation_id}/segments", include_in_schema=False)
async def segments(
    conversation_id: IdPath, user: CurrentUser, session: SessionDep, body: Text = ""
) -> HTMLResponse:
    """The SMS segment count of the reply being typed (htmx, as you type)."""
    await visible_conversation(session, user.principal, conversation_id)
    return HTMLResponse(escape(segments_text(body)))


@router.post("/conversations/{conversation_id}/reply", include_in_schema=False)
async def reply(
    conversation_id: IdPath,
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    body: Text = "",
) -> Response:
    convo = await visible_conversation(session, user.principal, conversation_id)
    supporter = await session.get(Supporter, convo.supporter_id)
    assert supporter is not None
    if not body.strip():
        errors = {"reply": "Type a reply first."}
        return await _page(request, user, session, conversation_id, status_code=422, errors=errors)
    try:
        await send_one_on_one(
            session, request.app.state.ctx, supporter, body, sent_by=user.principal.label
        )
    except CannotSend as exc:
        return await _refused(
            request, user, session, conversation_id, "reply", str(exc), typed=body, status_code=409
        )
    await session.commit()
    return _back(conversation_id, "#reply-box")


@router.post("/conversations/{conversation_id}/status", include_in_schema=False)
async def change_status(
    conversation_id: IdPath,
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    new_status: Annotated[str, Form(alias="status", max_length=16)] = "",
    until: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    """Resolve, reopen, or snooze until a local time (the organization's timezone)."""
    convo = await visible_conversation(session, user.principal, conversation_id)
    ctx = request.app.state.ctx
    snoozed_until: datetime | None = None
    try:
        if new_status == "snoozed":
            snoozed_until = _local_time(until, ctx.settings.default_timezone)
        set_status(convo, new_status, now=ctx.clock(), snoozed_until=snoozed_until)
    except InboxError as exc:
        return await _refused(
            request, user, session, conversation_id, "snooze", exc.message, typed=until
        )
    session.add(convo)
    await session.commit()
    return _back(conversation_id)


def _local_time(text: str, timezone: str) -> datetime:
    try:
        naive = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InboxError("snoozed_until", "Give the date and time to snooze until.") from None
    if naive.tzinfo is not None:
        return naive
    try:
        zone = ZoneInfo(timezone)
    except (KeyError, ValueError):
        zone = ZoneInfo("UTC")
    return naive.replace(tzinfo=zone)


@router.post("/conversations/{conversation_id}/assign", include_in_schema=False)
async def change_assignee(
    conversation_id: IdPath,
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    user_id: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    convo = await visible_conversation(session, user.principal, conversation_id)
    try:
        target = int(user_id) if user_id.strip() else None
        if target is not None and not 1 <= target <= MAX_ID:
            raise ValueError(user_id)
        await assign(session, convo, target, lead_team=lead_team(user.principal))
    except (InboxError, ValueError) as exc:
        message = exc.message if isinstance(exc, InboxError) else "Pick a user from the list."
        return await _refused(request, user, session, conversation_id, "assign", message)
    session.add(convo)
    await session.commit()
    return _back(conversation_id)


@router.post("/conversations/{conversation_id}/notes", include_in_schema=False)
async def note(
    conversation_id: IdPath,
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    body: Text = "",
) -> Response:
    await visible_conversation(session, user.principal, conversation_id)
    try:
        await add_note(
            session,
            conversation_id,
            body,
            author=user.principal.label,
            author_user_id=user.id,
            now=request.app.state.ctx.clock(),
        )
    except InboxError as exc:
        return await _refused(
            request, user, session, conversation_id, "note", exc.message, typed=body
        )
    await session.commit()
    return _back(conversation_id, "#notes")
