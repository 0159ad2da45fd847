"""Seeding for the announcement, poll and stats tests: straight into the database."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlmodel import col

from routing.context import AppContext
from storage.models import (
    Message,
    OutboxItem,
    Supporter,
    SupporterAddress,
    SupporterTag,
    Team,
    TeamMembership,
)


async def make_team(ctx: AppContext, name: str) -> int:
    async with ctx.sessions() as session:
        team = Team(name=name, created_at=ctx.clock())
        session.add(team)
        await session.commit()
        assert team.id is not None
        return team.id


async def add_member(
    ctx: AppContext,
    addresses: dict[str, str],
    *,
    teams: Sequence[int] = (),
    tags: Sequence[str] = (),
    name: str = "Ada",
    preferred: list[str] | None = None,
    language: str | None = None,
    opted_out: bool = False,
    timezone: str | None = None,
    last_inbound_at: datetime | None = None,
    address_last_inbound_at: datetime | None = None,
) -> int:
    """A supporter with `addresses` ({channel: address}), straight into the database;
    `address_last_inbound_at` is each address's last inbound (the WhatsApp window)."""
    now = ctx.clock()
    async with ctx.sessions() as session:
        supporter = Supporter(
            name=name,
            preferred_channels=preferred or [],
            language=language,
            timezone=timezone,
            opted_out=opted_out,
            last_inbound_at=last_inbound_at,
            created_at=now,
            updated_at=now,
        )
        session.add(supporter)
        await session.flush()
        assert supporter.id is not None
        for channel, address in addresses.items():
            session.add(
                SupporterAddress(
                    supporter_id=supporter.id,
                    channel=channel,
                    address=address,
                    last_inbound_at=address_last_inbound_at,
                )
            )
        for team_id in teams:
            session.add(TeamMembership(supporter_id=supporter.id, team_id=team_id))
        for tag in tags:
            session.add(SupporterTag(supporter_id=supporter.id, tag=tag))
        await session.commit()
        return supporter.id


async def bulk_members(
    ctx: AppContext, n: int, *, team_id: int, opted_out_every: int = 0, first: int = 1_000_000
) -> None:
    """`n` supporters on sms in `team_id`, seeded with executemany."""
    now = ctx.clock()
    numbers = range(first, first + n)
    async with ctx.sessions() as session:
        created = await session.execute(
            insert(Supporter).returning(col(Supporter.id)),
            [
                {
                    "name": f"s{i}",
                    "preferred_channels": [],
                    "opted_out": bool(opted_out_every) and i % opted_out_every == 0,
                    "source": "import",
                    "created_at": now,
                    "updated_at": now,
                }
                for i in numbers
            ],
        )
        ids = [row[0] for row in created]
        await session.execute(
            insert(SupporterAddress),
            [
                {
                    "supporter_id": sid,
                    "channel": "sms",
                    "address": f"+1415{i:07d}",
                    "opted_out": False,
                }
                for sid, i in zip(ids, numbers, strict=True)
            ],
        )
        await session.execute(
            insert(TeamMembership), [{"supporter_id": sid, "team_id": team_id} for sid in ids]
        )
        await session.commit()


async def messages_of(ctx: AppContext, announcement_id: int | None = None) -> list[Message]:
    async with ctx.sessions() as session:
        query = select(Message).order_by(col(Message.id))
        if announcement_id is not None:
            query = query.where(col(Message.announcement_id) == announcement_id)
        return list((await session.scalars(query)).all())


async def count(ctx: AppContext, model: Any, *where: Any) -> int:
    async with ctx.sessions() as session:
        query = select(func.count()).select_from(model)
        if where:
            query = query.where(*where)
        return int((await session.execute(query)).scalar_one())


async def outbox_by_message(ctx: AppContext) -> dict[int, OutboxItem]:
    async with ctx.sessions() as session:
        rows = (await session.scalars(select(OutboxItem))).all()
        return {row.message_id: row for row in rows}
