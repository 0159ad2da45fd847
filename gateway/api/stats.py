"""Team statistics for organizers: size, activity, reach per channel, one-on-ones, event
attendance."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy import case, func, select, text
from sqlmodel import col

from gateway.api.scope import SessionDep, visible_team
from gateway.auth import AnyRole, Context
from storage.models import (
    ONE_ON_ONE_SENT,
    EventOccurrence,
    EventRsvp,
    Message,
    Supporter,
    SupporterAddress,
    TeamMembership,
)

router = APIRouter(tags=["teams"])


class TeamStats(BaseModel):
    team_id: int
    team: str
    as_of: datetime
    members: int
    active_7d: int = Field(description="members who wrote to us in the last 7 days")
    active_30d: int = Field(description="members who wrote to us in the last 30 days")
    opted_out: int
    by_channel: dict[str, int] = Field(description="members with an address on each channel")
    one_on_ones_30d: int = Field(description="one-on-one messages sent to members in 30 days")
    events_said_yes_90d: int = Field(
        0, description="members' yes answers to event occurrences held in the last 90 days"
    )
    events_attended_90d: int = Field(0, description="members' attendances in those 90 days")
    attendance_rate_90d: float | None = Field(
        None, description="attended / said yes over those occurrences; null without any yes"
    )


@router.get("/teams/{team_ref}/stats", response_model=TeamStats)
async def team_stats(
    team_ref: str, ctx: Context, session: SessionDep, principal: AnyRole
) -> TeamStats:
    """A team by id or name; team leads see their own team only (else 404)."""
    team = await visible_team(session, principal, team_ref)
    assert team.id is not None
    now = ctx.clock()
    members = select(col(TeamMembership.supporter_id)).where(col(TeamMembership.team_id) == team.id)
    is_member = col(Supporter.id).in_(members)

    def since(days: int) -> Any:
        return func.sum(
            case((col(Supporter.last_inbound_at) >= now - timedelta(days=days), 1), else_=0)
        )

    totals = (
        await session.execute(
            select(
                func.count(),
                since(7),
                since(30),
                func.sum(case((col(Supporter.opted_out).is_(True), 1), else_=0)),
            ).where(is_member)
        )
    ).one()
    by_channel = await session.execute(
        select(
            col(SupporterAddress.channel),
            func.count(func.distinct(col(SupporterAddress.supporter_id))),
        )
        .where(col(SupporterAddress.supporter_id).in_(members))
        .group_by(col(SupporterAddress.channel))
    )
    one_on_ones = (
        await session.execute(
            select(func.count()).where(
                col(Message.supporter_id).in_(members),
                # Literals, so SQLite and PostgreSQL see the partial index's own terms.
                text(ONE_ON_ONE_SENT),
                col(Message.status) != "skipped",
                col(Message.created_at) >= now - timedelta(days=30),
            )
        )
    ).scalar_one()
    said_yes, came = (
        await session.execute(
            select(
                func.sum(case((col(EventRsvp.answer) == "yes", 1), else_=0)),
                func.sum(case((col(EventRsvp.attended).is_(True), 1), else_=0)),
            )
            .join(EventOccurrence, col(EventOccurrence.id) == col(EventRsvp.occurrence_id))
            .where(
                col(EventRsvp.supporter_id).in_(members),
                col(EventOccurrence.starts_at) <= now,
                col(EventOccurrence.starts_at) >= now - timedelta(days=90),
            )
        )
    ).one()
    count, active_7d, active_30d, opted_out = totals
    return TeamStats(
        team_id=team.id,
        team=team.name,
        as_of=now,
        members=count,
        active_7d=active_7d or 0,
        active_30d=active_30d or 0,
        opted_out=opted_out or 0,
        by_channel={channel: n for channel, n in by_channel},
        one_on_ones_30d=one_on_ones,
        events_said_yes_90d=said_yes or 0,
        events_attended_90d=came or 0,
        attendance_rate_90d=round((came or 0) / said_yes, 3) if said_yes else None,
    )
