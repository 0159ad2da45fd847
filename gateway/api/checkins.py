"""Recurring check-ins per team, and who has gone quiet (for one-on-one outreach)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, HTTPException, Query, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, field_validator
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gateway.api.announcement_create import checked_text
from gateway.api.ids import IdPath
from gateway.api.pagination import (
    DEFAULT_LIMIT,
    Cursor,
    Limit,
    decode_cursor,
    encode_cursor,
    split_page,
)
from gateway.api.problems import errors
from gateway.api.scope import SessionDep, lead_team, not_found
from gateway.auth import AnyRole, Context, Principal
from gateway.context import GatewayContext
from routing.organizing.checkin_schedule import checkin_zone, next_run, parse_local_time, reschedule
from routing.organizing.checkins import default_inactive_days, inactive_supporters, org_timezone
from routing.people.supporters import check_timezone
from storage.models import Checkin, Team
from storage.queries import find_team

router = APIRouter(tags=["checkins"])


class _CheckinFields(BaseModel):
    @field_validator("local_time", check_fields=False)
    @classmethod
    def _valid_time(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return parse_local_time(value.strip()).strftime("%H:%M")

    @field_validator("timezone", check_fields=False)
    @classmethod
    def _known_timezone(cls, value: str | None) -> str | None:
        return check_timezone(value)


class CheckinCreate(_CheckinFields):
    weekday: int = Field(ge=0, le=6, description="0 = Monday … 6 = Sunday")
    local_time: str = Field(description="HH:MM, 24 h, in the check-in's timezone")
    timezone: str | None = Field(
        None,
        max_length=64,
        description="IANA name, e.g. Africa/Nairobi; null: the organization's timezone",
    )
    prompt: str = Field(min_length=1, max_length=4096)
    inactive_days: int = Field(14, ge=1, le=365)
    nudge_text: str | None = Field(None, max_length=4096)


class CheckinPatch(_CheckinFields):
    """The fields given replace the stored ones; `timezone: null` goes back to the
    organization's, `nudge_text: null` stops the nudges."""

    weekday: int | None = Field(None, ge=0, le=6)
    local_time: str | None = None
    timezone: str | None = Field(None, max_length=64)
    prompt: str | None = Field(None, min_length=1, max_length=4096)
    inactive_days: int | None = Field(None, ge=1, le=365)
    nudge_text: str | None = Field(None, max_length=4096)


class CheckinPublic(BaseModel):
    id: int
    team_id: int
    team: str
    weekday: int
    local_time: str
    timezone: str = Field(description="the IANA timezone it runs in")
    own_timezone: str | None = Field(
        description="the check-in's own timezone; null: it follows the organization's"
    )
    prompt: str
    inactive_days: int
    nudge_text: str | None
    last_run_at: datetime | None
    next_run_at: datetime
    created_at: datetime


class CheckinList(BaseModel):
    items: list[CheckinPublic]


class InactiveItem(BaseModel):
    supporter_id: int
    name: str
    team: str | None
    last_inbound_at: datetime | None
    days_inactive: int


class InactiveList(BaseModel):
    items: list[InactiveItem]
    days: int
    next_cursor: str | None = None


def public(ctx: GatewayContext, checkin: Checkin, team: Team) -> CheckinPublic:
    assert checkin.id is not None
    org_tz = org_timezone(ctx)
    return CheckinPublic(
        id=checkin.id,
        team_id=checkin.team_id,
        team=team.name,
        weekday=checkin.weekday,
        local_time=checkin.local_time,
        timezone=checkin_zone(checkin, org_tz).key,
        own_timezone=checkin.timezone,
        prompt=checkin.prompt,
        inactive_days=checkin.inactive_days,
        nudge_text=checkin.nudge_text,
        last_run_at=checkin.last_run_at,
        next_run_at=next_run(checkin, org_tz, ctx.clock()),
        created_at=checkin.created_at,
    )


async def query_team(session: SessionDep, principal: Principal, ref: str | None) -> Team | None:
    """The `?team=` team (id or name; unknown → 422); a team lead is held to their own."""
    team: Team | None = None
    if ref:
        team = await find_team(session, ref)
        if team is None:
            raise RequestValidationError(
                [{"loc": ("query", "team"), "msg": f"no team {ref!r}", "type": "value_error"}]
            )
    own = lead_team(principal)
    if own is None:
        return team
    if team is not None and team.id != own:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "a team lead sees only their own team")
    return await session.get(Team, own)


@router.post("/teams/{team}/checkins", status_code=status.HTTP_201_CREATED)
async def create_checkin(
    team: str, body: CheckinCreate, principal: AnyRole, session: SessionDep, ctx: Context
) -> CheckinPublic:
    return await add_checkin(ctx, session, principal, team, body)


async def add_checkin(
    ctx: GatewayContext, session: AsyncSession, principal: Principal, team: str, body: CheckinCreate
) -> CheckinPublic:
    """What POST /teams/{team}/checkins does (the console's form too): unknown team → 404,
    a team lead's other team → 403."""
    found = await find_team(session, team)
    if found is None:
        raise not_found("team")
    if principal.is_team_lead and found.id != principal.team_id:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "a team lead manages only their own team")
    assert found.id is not None
    await checked_text(session, body.prompt, "prompt")
    checkin = Checkin(
        team_id=found.id,
        weekday=body.weekday,
        local_time=body.local_time,
        timezone=body.timezone,
        prompt=body.prompt,
        inactive_days=body.inactive_days,
        nudge_text=body.nudge_text,
        created_at=ctx.clock(),
    )
    session.add(checkin)
    await session.commit()
    await session.refresh(checkin)
    return public(ctx, checkin, found)


@router.get("/checkins")
async def list_checkins(
    principal: AnyRole, session: SessionDep, ctx: Context, team: str | None = None
) -> CheckinList:
    scope = await query_team(session, principal, team)
    query = select(Checkin, Team).join(Team, col(Team.id) == col(Checkin.team_id))
    if scope is not None:
        query = query.where(Checkin.team_id == scope.id)
    rows = (await session.exec(query.order_by(col(Checkin.id)))).all()
    return CheckinList(items=[public(ctx, checkin, t) for checkin, t in rows])


@router.get("/checkins/due")
async def due_for_outreach(
    principal: AnyRole,
    session: SessionDep,
    ctx: Context,
    team: str | None = None,
    days: int | None = Query(None, ge=1, le=3650),
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> InactiveList:
    """Supporters with no inbound message and no event attended for `days` days (default:
    the team's check-in setting, else 14), quietest first, for an organizer to reach out
    one-on-one; a page at a time (`next_cursor`)."""
    scope = await query_team(session, principal, team)
    window = days if days is not None else await default_inactive_days(session, scope)
    key = decode_cursor(cursor, (datetime, int))
    found = await inactive_supporters(
        session,
        ctx.clock(),
        window,
        scope,
        limit=limit + 1,
        after=(key[0], key[1]) if key else None,
    )
    page, more = split_page(found, limit)
    return InactiveList(
        items=[
            InactiveItem(
                supporter_id=item.supporter_id,
                name=item.name,
                team=item.team,
                last_inbound_at=item.last_inbound_at,
                days_inactive=item.days_inactive,
            )
            for item in page
        ],
        days=window,
        next_cursor=encode_cursor(page[-1].since, page[-1].supporter_id) if more else None,
    )


async def visible_checkin(session: SessionDep, principal: Principal, checkin_id: int) -> Checkin:
    checkin = await session.get(Checkin, checkin_id)
    own = lead_team(principal)
    if checkin is None or (own is not None and checkin.team_id != own):
        raise not_found("check-in")
    return checkin


@router.get("/checkins/{checkin_id}")
async def get_checkin(
    checkin_id: IdPath, principal: AnyRole, session: SessionDep, ctx: Context
) -> CheckinPublic:
    checkin = await visible_checkin(session, principal, checkin_id)
    team = await session.get(Team, checkin.team_id)
    assert team is not None
    return public(ctx, checkin, team)


@router.patch("/checkins/{checkin_id}", responses=errors({409: "the check-in just ran; try again"}))
async def patch_checkin(
    checkin_id: IdPath, body: CheckinPatch, principal: AnyRole, session: SessionDep, ctx: Context
) -> CheckinPublic:
    """Change the fields given. A new timezone or time keeps this week's run counted
    (`reschedule`); if the check-in runs at that very moment → 409, nothing changed."""
    return await update_checkin(ctx, session, principal, checkin_id, body)


async def update_checkin(
    ctx: GatewayContext,
    session: AsyncSession,
    principal: Principal,
    checkin_id: int,
    body: CheckinPatch,
) -> CheckinPublic:
    """What PATCH /checkins/{id} does (the console's edit form too)."""
    checkin = await visible_checkin(session, principal, checkin_id)
    if body.prompt is not None:
        await checked_text(session, body.prompt, "prompt")
    changes = {
        name: value
        for name, value in body.model_dump(exclude_unset=True).items()
        if value is not None or name in ("timezone", "nudge_text")  # the others can't be unset
    }
    if changes and not await reschedule(session, checkin, changes, org_timezone(ctx)):
        await session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, "the check-in just ran; try again")
    await session.commit()
    await session.refresh(checkin)
    team = await session.get(Team, checkin.team_id)
    assert team is not None
    return public(ctx, checkin, team)


@router.delete("/checkins/{checkin_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_checkin(checkin_id: IdPath, principal: AnyRole, session: SessionDep) -> Response:
    checkin = await visible_checkin(session, principal, checkin_id)
    await session.delete(checkin)
    await session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
