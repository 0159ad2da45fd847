"""Saved replies page (/console/saved-replies): list, add, change and delete the canned
responses the thread's "Saved reply" picker inserts. Same functions and rules as
/api/v1/saved-replies (a team lead changes only their own)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request, Response, status
from fastapi.responses import RedirectResponse

from gateway.api.ids import IdPath
from gateway.api.saved_replies import may_change
from gateway.api.scope import SessionDep, not_found
from gateway.console.security import CurrentUser
from gateway.console.templating import render
from routing.inbox.saved_replies import (
    MAX_BODY,
    MAX_TITLE,
    create_saved_reply,
    list_saved_replies,
    update_saved_reply,
)
from routing.inbox.state import InboxError
from storage.models import SavedReply

router = APIRouter()
PATH = "/console/saved-replies"
Title = Annotated[str, Form(max_length=MAX_TITLE + 50)]
Body = Annotated[str, Form(max_length=MAX_BODY + 50)]


async def _page(
    request: Request,
    user: Any,
    session: SessionDep,
    *,
    status_code: int = 200,
    error: str | None = None,
    typed: dict[str, str] | None = None,
    done: str | None = None,
) -> Response:
    replies = await list_saved_replies(session)
    return render(
        request,
        "saved_replies.html",
        {
            "replies": [(r, may_change(user.principal, r)) for r in replies],
            "error": error,
            "done": done,
            "typed": {"title": "", "body": "", **(typed or {})},
        },
        status_code=status_code,
    )


@router.get("/saved-replies", include_in_schema=False)
async def saved_replies_page(request: Request, user: CurrentUser, session: SessionDep) -> Response:
    done = {
        "added": "Saved reply added.",
        "changed": "Saved reply changed.",
        "deleted": "Saved reply deleted.",
    }.get(request.query_params.get("done", ""))
    return await _page(request, user, session, done=done)


@router.post("/saved-replies", include_in_schema=False)
async def add_saved_reply(
    request: Request, user: CurrentUser, session: SessionDep, title: Title = "", body: Body = ""
) -> Response:
    try:
        await create_saved_reply(
            session, title, body, created_by=user.principal.label, now=request.app.state.ctx.clock()
        )
    except InboxError as exc:
        await session.rollback()
        return await _page(
            request,
            user,
            session,
            status_code=422,
            error=exc.message,
            typed={"title": title, "body": body},
        )
    await session.commit()
    return RedirectResponse(f"{PATH}?done=added", status.HTTP_303_SEE_OTHER)


async def _changeable(session: SessionDep, user: Any, reply_id: int) -> SavedReply:
    reply = await session.get(SavedReply, reply_id)
    if reply is None:
        raise not_found("saved reply")
    if not may_change(user.principal, reply):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "A team lead changes only their own saved replies."
        )
    return reply


@router.post("/saved-replies/{reply_id}", include_in_schema=False)
async def change_saved_reply(
    reply_id: IdPath,
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    title: Title = "",
    body: Body = "",
) -> Response:
    reply = await _changeable(session, user, reply_id)
    try:
        await update_saved_reply(
            session, reply, title=title, body=body, now=request.app.state.ctx.clock()
        )
    except InboxError as exc:
        await session.rollback()
        return await _page(request, user, session, status_code=422, error=exc.message)
    await session.commit()
    return RedirectResponse(f"{PATH}?done=changed", status.HTTP_303_SEE_OTHER)


@router.post("/saved-replies/{reply_id}/delete", include_in_schema=False)
async def delete_saved_reply(reply_id: IdPath, user: CurrentUser, session: SessionDep) -> Response:
    reply = await _changeable(session, user, reply_id)
    await session.delete(reply)
    await session.commit()
    return RedirectResponse(f"{PATH}?done=deleted", status.HTTP_303_SEE_OTHER)
