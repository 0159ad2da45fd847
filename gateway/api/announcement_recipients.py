"""Who an announcement (or a poll) went to, one row per recipient: the message's channel,
status and error, whether they wrote back since, and for a poll their answer. The console's
report pages read the same function (who did and did not reply or answer)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlalchemy import and_, func
from sqlalchemy import select as sa_select
from sqlalchemy.orm import aliased
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gateway.api.announcements import visible_announcement
from gateway.api.ids import IdPath
from gateway.api.pagination import (
    DEFAULT_LIMIT,
    Cursor,
    Limit,
    Page,
    decode_cursor,
    encode_cursor,
    split_page,
)
from gateway.api.scope import SessionDep
from gateway.auth import AnyRole
from storage.models import Announcement, Message, Poll, PollAnswer, Supporter

router = APIRouter(tags=["announcements"])


class Recipient(BaseModel):
    supporter_id: int
    name: str
    channel: str | None
    status: str
    error: str | None
    replied_at: datetime | None = Field(
        description="their first inbound message since the announcement was sent, if any"
    )
    answer: int | None = Field(None, description="a poll's option index they answered (0-based)")


async def recipient_page(
    session: AsyncSession,
    announcement: Announcement,
    *,
    replied: bool | None = None,
    limit: int = DEFAULT_LIMIT,
    after: int = 0,
) -> tuple[list[Recipient], bool]:
    """Recipients by supporter id after `after`; `replied` True/False keeps only those who
    did (a poll: answered) or did not. Returns the page and whether more follow."""
    assert announcement.id is not None
    since = max(announcement.created_at, announcement.send_at or announcement.created_at)
    inbound = aliased(Message)  # not the outer query's messages row
    reply = (
        sa_select(func.min(col(inbound.created_at)))
        .where(
            col(inbound.supporter_id) == col(Supporter.id),
            col(inbound.direction) == "inbound",
            col(inbound.created_at) >= since,
        )
        .correlate(Supporter)
        .scalar_subquery()
    )
    poll = (await session.exec(select(Poll).where(Poll.announcement_id == announcement.id))).first()
    answer = (
        select(col(PollAnswer.option_index))
        .where(
            col(PollAnswer.supporter_id) == col(Supporter.id),
            col(PollAnswer.poll_id) == (poll.id if poll else -1),
        )
        .scalar_subquery()
    )
    query = (
        sa_select(
            col(Supporter.id),
            col(Supporter.name),
            col(Message.channel),
            col(Message.status),
            col(Message.error),
            reply,
            answer,
        )
        .join(Supporter, col(Supporter.id) == col(Message.supporter_id))
        .where(
            and_(
                col(Message.announcement_id) == announcement.id,
                col(Message.supporter_id) > after,
            )
        )
        .order_by(col(Message.supporter_id))
        .limit(limit + 1)
    )
    done = answer if poll is not None else reply
    if replied is True:
        query = query.where(done.is_not(None))
    elif replied is False:
        query = query.where(done.is_(None))
    rows = (await session.execute(query)).all()
    page, more = split_page(list(rows), limit)
    return [
        Recipient(
            supporter_id=s,
            name=n or "",
            channel=c,
            status=st,
            error=e,
            replied_at=r,
            answer=a,
        )
        for s, n, c, st, e, r, a in page
    ], more


@router.get("/announcements/{announcement_id}/recipients", response_model=Page[Recipient])
async def list_recipients(
    announcement_id: IdPath,
    session: SessionDep,
    principal: AnyRole,
    replied: bool | None = Query(
        None, description="true: only who replied (a poll: answered); false: only who did not"
    ),
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[Recipient]:
    """One row per recipient, by supporter id (team leads: their team's announcements)."""
    announcement = await visible_announcement(session, principal, announcement_id)
    key = decode_cursor(cursor, (int,))
    items, more = await recipient_page(
        session, announcement, replied=replied, limit=limit, after=key[0] if key else 0
    )
    last = items[-1].supporter_id if items and more else None
    return Page(items=items, next_cursor=encode_cursor(last) if last else None)
