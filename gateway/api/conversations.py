"""/api/v1/conversations: one conversation per supporter, newest activity first."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from sqlalchemy import and_, func, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gateway.api.ids import IdPath, IdQuery
from gateway.api.pagination import Cursor, Limit, Page, decode_cursor, encode_cursor, split_page
from gateway.api.schemas_messages import ConversationPublic, MessagePublic, message_public
from gateway.api.scope import SessionDep, visible_conversation, visible_rows
from gateway.auth import AnyRole, Principal
from storage.models import Conversation, Message, Supporter

router = APIRouter(prefix="/conversations", tags=["conversations"])

# Conversations that never had a message sort by when they were opened.
_activity = func.coalesce(col(Conversation.last_message_at), col(Conversation.created_at))


def _public(convo: Conversation, supporter_name: str) -> ConversationPublic:
    assert convo.id is not None
    return ConversationPublic(
        id=convo.id,
        supporter_id=convo.supporter_id,
        supporter_name=supporter_name,
        last_message_at=convo.last_message_at,
        unread=convo.unread,
        unread_count=convo.unread_count,
        created_at=convo.created_at,
    )


async def conversation_page(
    session: AsyncSession,
    principal: Principal,
    *,
    supporter_id: int | None = None,
    assigned_to: str | None = None,
    unread: bool | None = None,
    team: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[tuple[Conversation, str]], str | None]:
    """One page of the conversations `principal` may see, newest activity first: (each
    conversation with its supporter's name, the next page's cursor). The REST list and the
    console inbox both read it."""
    stmt = select(Conversation, Supporter.name, _activity).join(
        Supporter, col(Supporter.id) == col(Conversation.supporter_id)
    )
    stmt = await visible_rows(stmt, session, principal, team)
    if supporter_id is not None:
        stmt = stmt.where(Conversation.supporter_id == supporter_id)
    if assigned_to is not None:
        stmt = stmt.where(Supporter.assigned_to == assigned_to)
    if unread is not None:
        stmt = stmt.where(Conversation.unread == unread)
    after = decode_cursor(cursor, (datetime, int))
    if after is not None:
        when, last_id = after
        stmt = stmt.where(
            or_(_activity < when, and_(_activity == when, col(Conversation.id) < last_id))
        )
    stmt = stmt.order_by(_activity.desc(), col(Conversation.id).desc()).limit(limit + 1)
    rows = list((await session.exec(stmt)).all())
    page, more = split_page(rows, limit)
    next_cursor = None
    if more:
        last, _, activity = page[-1]
        next_cursor = encode_cursor(activity, last.id)
    return [(c, name) for c, name, _ in page], next_cursor


@router.get("", response_model=Page[ConversationPublic])
async def list_conversations(
    principal: AnyRole,
    session: SessionDep,
    supporter_id: IdQuery = None,
    assigned_to: str | None = None,
    unread: bool | None = None,
    team: str | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[ConversationPublic]:
    page, next_cursor = await conversation_page(
        session,
        principal,
        supporter_id=supporter_id,
        assigned_to=assigned_to,
        unread=unread,
        team=team,
        limit=limit,
        cursor=cursor,
    )
    return Page(items=[_public(c, name) for c, name in page], next_cursor=next_cursor)


@router.post("/{conversation_id}/read", response_model=ConversationPublic)
async def mark_read(
    conversation_id: IdPath, principal: AnyRole, session: SessionDep
) -> ConversationPublic:
    convo = await visible_conversation(session, principal, conversation_id)
    convo.unread = False
    convo.unread_count = 0
    session.add(convo)
    await session.commit()
    supporter = await session.get(Supporter, convo.supporter_id)
    return _public(convo, supporter.name if supporter else "")


@router.get("/{conversation_id}/messages", response_model=Page[MessagePublic])
async def conversation_messages(
    conversation_id: IdPath,
    principal: AnyRole,
    session: SessionDep,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[MessagePublic]:
    """The conversation's messages, oldest first."""
    await visible_conversation(session, principal, conversation_id)
    stmt = select(Message).where(Message.conversation_id == conversation_id)
    after = decode_cursor(cursor, (int,))
    if after is not None:
        stmt = stmt.where(col(Message.id) > after[0])
    rows = list((await session.exec(stmt.order_by(col(Message.id)).limit(limit + 1))).all())
    page, more = split_page(rows, limit)
    return Page(
        items=[message_public(m) for m in page],
        next_cursor=encode_cursor(page[-1].id) if more else None,
    )
