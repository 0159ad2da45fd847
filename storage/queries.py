"""Query functions shared by the API, routing and the CLI."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import case, func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import (
    MAX_ID,
    Conversation,
    Message,
    Supporter,
    SupporterAddress,
    SupporterTag,
    Team,
    TeamMembership,
)


async def find_team(session: AsyncSession, ref: str | int) -> Team | None:
    """A team by its id or its unique name (the contract accepts either everywhere)."""
    text = str(ref).strip()
    # ASCII digits only: str.isdigit() also takes '²' or '٣', which int() may refuse.
    if text.isascii() and text.isdigit() and int(text) <= MAX_ID:
        team = await session.get(Team, int(text))
        if team is not None:
            return team
    return (await session.exec(select(Team).where(Team.name == text))).first()


async def addresses_by_supporter(
    session: AsyncSession, ids: Sequence[int]
) -> dict[int, list[SupporterAddress]]:
    out: dict[int, list[SupporterAddress]] = defaultdict(list)
    if ids:
        rows = await session.exec(
            select(SupporterAddress)
            .where(col(SupporterAddress.supporter_id).in_(ids))
            .order_by(col(SupporterAddress.id))
        )
        for row in rows.all():
            out[row.supporter_id].append(row)
    return out


async def tags_by_supporter(session: AsyncSession, ids: Sequence[int]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = defaultdict(list)
    if ids:
        rows = await session.exec(
            select(SupporterTag)
            .where(col(SupporterTag.supporter_id).in_(ids))
            .order_by(col(SupporterTag.tag))
        )
        for row in rows.all():
            out[row.supporter_id].append(row.tag)
    return out


async def teams_by_supporter(session: AsyncSession, ids: Sequence[int]) -> dict[int, list[Team]]:
    out: dict[int, list[Team]] = defaultdict(list)
    if ids:
        rows = await session.exec(
            select(TeamMembership.supporter_id, Team)
            .join(Team, col(Team.id) == col(TeamMembership.team_id))
            .where(col(TeamMembership.supporter_id).in_(ids))
            .order_by(col(Team.name))
        )
        for supporter_id, team in rows.all():
            out[supporter_id].append(team)
    return out


async def message_stats(session: AsyncSession, ids: Sequence[int]) -> dict[int, dict[str, int]]:
    """Per supporter: messages in, messages out, and one-on-ones sent to them."""
    out: dict[int, dict[str, int]] = {
        i: {"messages_in": 0, "messages_out": 0, "one_on_ones": 0} for i in ids
    }
    if not ids:
        return out
    one_on_one = case(
        (
            (col(Message.direction) == "outbound") & (col(Message.kind) == "one_on_one"),
            1,
        ),
        else_=0,
    )
    rows = await session.exec(
        select(
            Message.supporter_id,
            Message.direction,
            func.count(),
            func.sum(one_on_one),
        )
        .where(col(Message.supporter_id).in_(ids))
        .group_by(col(Message.supporter_id), col(Message.direction))
    )
    for supporter_id, direction, count, one_on_ones in rows.all():
        stats = out[supporter_id]
        stats["messages_in" if direction == "inbound" else "messages_out"] += int(count)
        stats["one_on_ones"] += int(one_on_ones or 0)
    return out


def in_team(team_id: int) -> Any:
    """A WHERE clause: the supporter is a member of `team_id`."""
    return col(Supporter.id).in_(
        select(TeamMembership.supporter_id).where(TeamMembership.team_id == team_id)
    )


async def conversation_for(session: AsyncSession, supporter_id: int, now: datetime) -> Conversation:
    """The supporter's one conversation, created on first use (no commit)."""
    convo = (
        await session.exec(select(Conversation).where(Conversation.supporter_id == supporter_id))
    ).first()
    if convo is None:
        convo = Conversation(supporter_id=supporter_id, created_at=now)
        session.add(convo)
        await session.flush()
    return convo


async def last_messages(
    session: AsyncSession, conversation_ids: Sequence[int]
) -> dict[int, Message]:
    """The newest message of each conversation (by id), for inbox previews."""
    if not conversation_ids:
        return {}
    newest = (
        select(func.max(col(Message.id)))
        .where(col(Message.conversation_id).in_(conversation_ids))
        .group_by(col(Message.conversation_id))
    )
    rows = await session.exec(select(Message).where(col(Message.id).in_(newest)))
    return {m.conversation_id: m for m in rows.all()}
