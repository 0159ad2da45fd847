"""/api/v1/conversations: one conversation per supporter, newest activity first."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlalchemy import and_, false, func, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gateway.api.ids import IdPath, IdQuery
from gateway.api.pagination import Cursor, Limit, Page, decode_cursor, encode_cursor, split_page
from gateway.api.schemas_messages import ConversationPublic, MessagePublic, message_public
from gateway.api.scope import SessionDep, visible_conversation, visible_rows
from gateway.auth import AnyRole, Context, Principal
from routing.inbox.state import effective_status, status_clause
from storage.models import Conversation, Message, Supporter, SupporterAddress
from storage.search_terms import matching_supporters

router = APIRouter(prefix="/conversations", tags=["conversations"])

# Conversations that never had a message sort by when they were opened.
_activity = func.coalesce(col(Conversation.last_message_at), col(Conversation.created_at))


def conversation_public(
    convo: Conversation, supporter_name: str, now: datetime
) -> ConversationPublic:
    assert convo.id is not None
    state = effective_status(convo, now)
    return ConversationPublic(
        id=convo.id,
        supporter_id=convo.supporter_id,
        supporter_name=supporter_name,
        last_message_at=convo.last_message_at,
        unread=convo.unread,
        unread_count=convo.unread_count,
        status=state,
        snoozed_until=convo.snoozed_until if state == "snoozed" else None,
        assigned_user_id=convo.assigned_user_id,
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
    status: str | None = None,
    assigned_user_id: int | None = None,
    channel: str | None = None,
    search: str | None = None,
    now: datetime | None = None,
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
        # As a list of supporters: few have a given assignee, and the planner (SQLite's
        # statistics hold no histogram) would rather walk every conversation than see it.
        assigned = select(Supporter.id).where(Supporter.assigned_to == assigned_to)
        stmt = stmt.where(col(Conversation.supporter_id).in_(assigned))
    if unread is not None:
        stmt = stmt.where(Conversation.unread == unread)
    if status:
        if now is None:
            raise ValueError("a status filter needs the time")
        stmt = stmt.where(status_clause(status, now))
    if assigned_user_id is not None:
        stmt = stmt.where(Conversation.assigned_user_id == assigned_user_id)
    if channel:
        stmt = stmt.where(_has_address(channel))
    if search and search.strip():
        stmt = stmt.where(await _matches(session, search.strip()))
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


def _has_address(channel: str) -> Any:
    return (
        select(SupporterAddress.id)
        .where(
            col(SupporterAddress.supporter_id) == col(Conversation.supporter_id),
            SupporterAddress.channel == channel,
        )
        .exists()
    )


# A search that finds more supporters than this reads the inbox in its order and keeps
# the matches; fewer, and their conversations are fetched and sorted (a name or number).
COMMON_MATCH = 2000


async def _matches(session: AsyncSession, text: str) -> Any:
    """The supporter is found by `text` as the supporter search finds them (name, phone
    number, email: `storage.search_terms`). Which way round the query reads depends on
    how many match, counted first (up to COMMON_MATCH) in the search index."""
    found = matching_supporters(text)
    if found is None:
        return false()
    bounded = select(func.count()).select_from(found.limit(COMMON_MATCH + 1).subquery())
    many = (await session.exec(bounded)).one() > COMMON_MATCH
    # `+ 0`: an expression no index holds, so the planner walks the activity index.
    target = col(Conversation.supporter_id) + 0 if many else col(Conversation.supporter_id)
    return target.in_(found)


StatusFilter = Annotated[
    str | None, Query(description="open, resolved or snoozed", pattern="^(open|resolved|snoozed)$")
]


@router.get("", response_model=Page[ConversationPublic])
async def list_conversations(
    principal: AnyRole,
    session: SessionDep,
    supporter_id: IdQuery = None,
    assigned_to: str | None = None,
    unread: bool | None = None,
    team: str | None = None,
    status: StatusFilter = None,
    assigned_user_id: IdQuery = None,
    channel: str | None = None,
    q: Annotated[str | None, Query(max_length=200, description="name, phone or email")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
    *,
    ctx: Context,
) -> Page[ConversationPublic]:
    now = ctx.clock()
    page, next_cursor = await conversation_page(
        session,
        principal,
        supporter_id=supporter_id,
        assigned_to=assigned_to,
        unread=unread,
        team=team,
        status=status,
        assigned_user_id=assigned_user_id,
        channel=channel,
        search=q,
        now=now,
        limit=limit,
        cursor=cursor,
    )
    return Page(
        items=[conversation_public(c, name, now) for c, name in page], next_cursor=next_cursor
    )


@router.post("/{conversation_id}/read", response_model=ConversationPublic)
async def mark_read(
    conversation_id: IdPath, principal: AnyRole, session: SessionDep, ctx: Context
) -> ConversationPublic:
    convo = await read_conversation(session, principal, conversation_id)
    supporter = await session.get(Supporter, convo.supporter_id)
    return conversation_public(convo, supporter.name if supporter else "", ctx.clock())


async def read_conversation(
    session: AsyncSession, principal: Principal, conversation_id: int
) -> Conversation:
    """Mark a conversation `principal` may see as read and commit (the REST call and the
    console's opening a thread)."""
    convo = await visible_conversation(session, principal, conversation_id)
    if convo.unread or convo.unread_count:
        convo.unread = False
        convo.unread_count = 0
        session.add(convo)
        await session.commit()
    return convo


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
