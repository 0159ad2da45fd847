"""/api/v1/teams: teams by id or unique name; a team lead sees only their own. Deleting
one settles what refers to it as routing/people/team_delete.py says."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response, status
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gateway.api.pagination import MAX_LIMIT, Cursor, decode_cursor, encode_cursor, split_page
from gateway.api.problems import errors
from gateway.api.schemas_teams import TeamCreate, TeamList, TeamPatch, TeamPublic
from gateway.api.scope import SessionDep, not_found, visible_team
from gateway.auth import AnyRole, Context, Staff
from routing.people.team_delete import TeamBusy, TeamGone, delete_team
from storage.models import Team

router = APIRouter(prefix="/teams", tags=["teams"])


async def team_views(session: AsyncSession, teams: Sequence[Team]) -> list[TeamPublic]:
    ids = [t.id for t in teams if t.id is not None]
    counts: dict[int, int] = {}
    if ids:
        # Read from the database: the triggers may have moved it since `teams` were loaded.
        rows = await session.exec(select(Team.id, Team.member_count).where(col(Team.id).in_(ids)))
        counts = {team_id: int(n) for team_id, n in rows.all() if team_id is not None}
    return [
        TeamPublic(
            id=t.id or 0,
            name=t.name,
            description=t.description,
            welcome_text=t.welcome_text,
            orientation_call=t.orientation_call,
            created_at=t.created_at,
            members=counts.get(t.id or 0, 0),
        )
        for t in teams
    ]


async def _name_taken(session: AsyncSession, name: str, but: int | None = None) -> bool:
    found = (await session.exec(select(Team.id).where(Team.name == name))).first()
    return found is not None and found != but


def _conflict(name: str) -> HTTPException:
    return HTTPException(status.HTTP_409_CONFLICT, f"a team named {name!r} exists already")


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=TeamPublic,
    responses=errors({409: "a team with this name exists already"}),
)
async def create_team(
    body: TeamCreate, _principal: Staff, ctx: Context, session: SessionDep
) -> TeamPublic:
    if await _name_taken(session, body.name):
        raise _conflict(body.name)
    team = Team(**body.model_dump(), created_at=ctx.clock())
    session.add(team)
    try:
        await session.commit()
    except IntegrityError as exc:  # a concurrent twin won
        raise _conflict(body.name) from exc
    return (await team_views(session, [team]))[0]


@router.get("", response_model=TeamList)
async def list_teams(
    principal: AnyRole,
    session: SessionDep,
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description="teams per page (max and default 500)")
    ] = MAX_LIMIT,
    cursor: Cursor = None,
) -> TeamList:
    """By name, from its unique index; `next_cursor` when more teams follow."""
    stmt = select(Team).order_by(col(Team.name)).limit(limit + 1)
    key = decode_cursor(cursor, (str,))
    if key is not None:
        stmt = stmt.where(col(Team.name) > key[0])
    if principal.is_team_lead:
        stmt = stmt.where(Team.id == principal.team_id)
    rows, more = split_page(list((await session.exec(stmt)).all()), limit)
    return TeamList(
        items=await team_views(session, rows),
        next_cursor=encode_cursor(rows[-1].name) if rows and more else None,
    )


@router.get("/{ref}", response_model=TeamPublic)
async def read_team(ref: str, principal: AnyRole, session: SessionDep) -> TeamPublic:
    """A team by id or name."""
    return (await team_views(session, [await visible_team(session, principal, ref)]))[0]


@router.patch(
    "/{ref}",
    response_model=TeamPublic,
    responses=errors({409: "another team has this name"}),
)
async def patch_team(
    ref: str, body: TeamPatch, principal: Staff, session: SessionDep
) -> TeamPublic:
    team = await visible_team(session, principal, ref)
    changes = body.model_dump(exclude_unset=True)
    if changes.get("name") is None:
        changes.pop("name", None)
    if "name" in changes and await _name_taken(session, changes["name"], but=team.id):
        raise _conflict(changes["name"])
    for name, value in changes.items():
        setattr(team, name, value)
    session.add(team)
    try:
        await session.commit()
    except IntegrityError as exc:
        raise _conflict(str(changes.get("name"))) from exc
    return (await team_views(session, [team]))[0]


@router.delete(
    "/{ref}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors({409: "the team cannot be deleted now (the message says why)"}),
)
async def remove_team(ref: str, principal: Staff, ctx: Context, session: SessionDep) -> Response:
    """Members stay (in their other teams too), check-ins go, team-lead keys are revoked,
    announcement history stays. An announcement to it still going out → 409 naming it."""
    team = await visible_team(session, principal, ref)
    assert team.id is not None
    try:
        await delete_team(session, team.id, ctx.clock())
    except TeamBusy as exc:
        await session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    except TeamGone:
        raise not_found("team") from None
    await session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
