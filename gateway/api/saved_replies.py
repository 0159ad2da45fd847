"""/api/v1/saved-replies: canned responses organizers insert into replies (`{first_name}`
is filled in from the supporter when inserted). Every role reads them and adds new ones;
a team lead changes or deletes only the ones they made."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, HTTPException, Response, status
from pydantic import BaseModel, Field

from gateway.api.conversation_actions import invalid
from gateway.api.ids import IdPath
from gateway.api.scope import SessionDep, not_found
from gateway.auth import AnyRole, Context, Principal
from routing.inbox.saved_replies import (
    MAX_BODY,
    MAX_TITLE,
    create_saved_reply,
    list_saved_replies,
    update_saved_reply,
)
from routing.inbox.state import InboxError
from storage.models import SavedReply

router = APIRouter(prefix="/saved-replies", tags=["saved replies"])


class SavedReplyCreate(BaseModel):
    title: str = Field(min_length=1, max_length=MAX_TITLE)
    body: str = Field(min_length=1, max_length=MAX_BODY, description="may use {first_name}")


class SavedReplyUpdate(BaseModel):
    title: str | None = Field(None, min_length=1, max_length=MAX_TITLE)
    body: str | None = Field(None, min_length=1, max_length=MAX_BODY)


class SavedReplyPublic(BaseModel):
    id: int
    title: str
    body: str
    created_by: str | None
    created_at: datetime
    updated_at: datetime


def saved_reply_public(reply: SavedReply) -> SavedReplyPublic:
    assert reply.id is not None
    return SavedReplyPublic(
        id=reply.id,
        title=reply.title,
        body=reply.body,
        created_by=reply.created_by,
        created_at=reply.created_at,
        updated_at=reply.updated_at,
    )


def may_change(principal: Principal, reply: SavedReply) -> bool:
    """Admins and coordinators change any saved reply; a team lead only their own."""
    return not principal.is_team_lead or reply.created_by == principal.label


async def changeable(session: SessionDep, principal: Principal, reply_id: int) -> SavedReply:
    reply = await session.get(SavedReply, reply_id)
    if reply is None:
        raise not_found("saved reply")
    if not may_change(principal, reply):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "a team lead changes only their own")
    return reply


@router.get("", response_model=list[SavedReplyPublic])
async def get_saved_replies(principal: AnyRole, session: SessionDep) -> list[SavedReplyPublic]:
    """Every saved reply, by title."""
    return [saved_reply_public(r) for r in await list_saved_replies(session)]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=SavedReplyPublic)
async def post_saved_reply(
    body: SavedReplyCreate, principal: AnyRole, session: SessionDep, ctx: Context
) -> SavedReplyPublic:
    """A new saved reply; a title already used → 422."""
    try:
        reply = await create_saved_reply(
            session, body.title, body.body, created_by=principal.label, now=ctx.clock()
        )
    except InboxError as exc:
        raise invalid(exc) from exc
    await session.commit()
    return saved_reply_public(reply)


@router.patch("/{reply_id}", response_model=SavedReplyPublic)
async def patch_saved_reply(
    reply_id: IdPath,
    body: SavedReplyUpdate,
    principal: AnyRole,
    session: SessionDep,
    ctx: Context,
) -> SavedReplyPublic:
    reply = await changeable(session, principal, reply_id)
    try:
        await update_saved_reply(session, reply, title=body.title, body=body.body, now=ctx.clock())
    except InboxError as exc:
        await session.rollback()
        raise invalid(exc) from exc
    await session.commit()
    return saved_reply_public(reply)


@router.delete("/{reply_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_saved_reply(reply_id: IdPath, principal: AnyRole, session: SessionDep) -> Response:
    reply = await changeable(session, principal, reply_id)
    await session.delete(reply)
    await session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
