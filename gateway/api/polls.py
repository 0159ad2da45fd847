"""Polls: a question with numbered options sent like an announcement, answers tallied."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, HTTPException, Response, status
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from channels.graphemes import truncate
from gateway.api.announcement_create import AudienceIn, create_announcement, request_hash
from gateway.api.ids import IdempotencyKey, IdPath
from gateway.api.pagination import (
    DEFAULT_LIMIT,
    Cursor,
    Limit,
    Page,
    decode_cursor,
    encode_cursor,
    split_page,
)
from gateway.api.problems import errors
from gateway.api.scope import SessionDep, lead_team, not_found
from gateway.auth import AnyRole, Context, Principal
from gateway.context import GatewayContext
from routing.organizing.polls import render_poll
from storage.models import Announcement, Poll, PollAnswer

router = APIRouter(tags=["polls"])


class PollCreate(BaseModel):
    question: str = Field(min_length=1, max_length=2000)
    options: list[str] = Field(min_length=2, max_length=10)
    audience: AudienceIn
    send_at: datetime | None = None

    @field_validator("options")
    @classmethod
    def _distinct_options(cls, options: list[str]) -> list[str]:
        cleaned = [option.strip() for option in options]
        if any(not option or len(option) > 200 for option in cleaned):
            raise ValueError("options must be 1 to 200 characters")
        if len({option.casefold() for option in cleaned}) != len(cleaned):
            raise ValueError("options must differ")
        return cleaned


class PollPublic(BaseModel):
    id: int
    announcement_id: int | None
    question: str
    options: list[str]
    recipients: int
    state: str
    closed: bool
    created_at: datetime


class TallyItem(BaseModel):
    option: str
    count: int


class PollResults(PollPublic):
    tally: list[TallyItem]
    answers: int
    by_channel: dict[str, int] = Field(description="answers per channel they came in on")


def public(poll: Poll, announcement: Announcement | None) -> PollPublic:
    assert poll.id is not None
    return PollPublic(
        id=poll.id,
        announcement_id=poll.announcement_id,
        question=poll.question,
        options=list(poll.options or []),
        recipients=announcement.recipients if announcement else 0,
        state=announcement.state if announcement else "fanned_out",
        closed=poll.closed,
        created_at=poll.created_at,
    )


@router.post(
    "/polls",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=PollPublic,
    responses={
        200: {"model": PollPublic, "description": "a replay: this Idempotency-Key's poll"},
        **errors({409: "this Idempotency-Key was used with another request"}),
    },
)
async def create_poll(
    payload: PollCreate,
    ctx: Context,
    principal: AnyRole,
    response: Response,
    key: IdempotencyKey = None,
) -> PollPublic:
    """Send the question to the audience (kind "poll"); replies are matched to options."""
    poll, announcement, created = await start_poll(ctx, principal, payload, key)
    if not created:
        response.status_code = status.HTTP_200_OK
    return public(poll, announcement)


async def start_poll(
    ctx: GatewayContext, principal: Principal, payload: PollCreate, key: str | None
) -> tuple[Poll, Announcement, bool]:
    """Create (or replay, by `key`) a poll and fan its question out, as POST /polls does
    (the console's poll form too); True when it was created now."""

    async def add_poll(session: AsyncSession, announcement: Announcement) -> None:
        session.add(
            Poll(
                question=payload.question,
                options=payload.options,
                announcement_id=announcement.id,
                created_at=ctx.clock(),
            )
        )

    announcement, created = await create_announcement(
        ctx,
        principal,
        kind="poll",
        body=render_poll(payload.question, payload.options),
        subject=truncate(payload.question, 200),
        audience_in=payload.audience,
        send_at=payload.send_at,
        template=None,
        key=key,
        digest=request_hash("poll", payload),
        on_create=add_poll,
        text_field="question",
    )
    async with ctx.sessions() as session:
        poll = (
            await session.exec(select(Poll).where(Poll.announcement_id == announcement.id))
        ).first()
    if poll is None:  # unreachable: a plain announcement's key hashes differently (409)
        raise HTTPException(status.HTTP_409_CONFLICT, "this Idempotency-Key was used elsewhere")
    return poll, announcement, created


@router.get("/polls", response_model=Page[PollPublic])
async def list_polls(
    session: SessionDep, principal: AnyRole, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> Page[PollPublic]:
    """Newest first (team leads: their team's polls)."""
    query = (
        select(Poll, Announcement)
        .outerjoin(Announcement, col(Announcement.id) == col(Poll.announcement_id))
        .order_by(col(Poll.id).desc())
        .limit(limit + 1)
    )
    key = decode_cursor(cursor, (int,))
    if key is not None:
        query = query.where(col(Poll.id) < key[0])
    own = lead_team(principal)
    if own is not None:
        query = query.where(Announcement.team_scope_id == own)
    rows, more = split_page(list((await session.exec(query)).all()), limit)
    last = rows[-1][0].id if rows and more else None
    return Page(
        items=[public(p, a) for p, a in rows], next_cursor=encode_cursor(last) if last else None
    )


async def visible_poll(
    session: AsyncSession, principal: Principal, poll_id: int
) -> tuple[Poll, Announcement | None]:
    poll = await session.get(Poll, poll_id)
    if poll is None:
        raise not_found("poll")
    announcement = (
        await session.get(Announcement, poll.announcement_id) if poll.announcement_id else None
    )
    own = lead_team(principal)
    if own is not None and (announcement is None or announcement.team_scope_id != own):
        raise not_found("poll")
    return poll, announcement


@router.get("/polls/{poll_id}", response_model=PollResults)
async def get_poll(poll_id: IdPath, session: SessionDep, principal: AnyRole) -> PollResults:
    poll, announcement = await visible_poll(session, principal, poll_id)
    return await poll_results(session, poll, announcement)


async def poll_results(
    session: AsyncSession, poll: Poll, announcement: Announcement | None
) -> PollResults:
    """The poll with its tally per option and answers per channel."""
    rows = await session.execute(
        select(col(PollAnswer.option_index), col(PollAnswer.channel), func.count())
        .where(PollAnswer.poll_id == poll.id)
        .group_by(col(PollAnswer.option_index), col(PollAnswer.channel))
    )
    options = list(poll.options or [])
    counts = [0] * len(options)
    by_channel: dict[str, int] = {}
    for index, channel, n in rows:
        if 0 <= index < len(counts):
            counts[index] += n
        by_channel[channel or "none"] = by_channel.get(channel or "none", 0) + n
    return PollResults(
        **public(poll, announcement).model_dump(),
        tally=[TallyItem(option=o, count=c) for o, c in zip(options, counts, strict=True)],
        answers=sum(counts),
        by_channel=by_channel,
    )


@router.post("/polls/{poll_id}/close", response_model=PollPublic)
async def close_poll(poll_id: IdPath, session: SessionDep, principal: AnyRole) -> PollPublic:
    """Stop matching replies to this poll (replies become ordinary messages)."""
    poll, announcement = await visible_poll(session, principal, poll_id)
    poll.closed = True
    session.add(poll)
    await session.commit()
    return public(poll, announcement)
