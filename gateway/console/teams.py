"""The teams page (GET /console/teams, admins and coordinators; a team lead → 403): every
team with its members, activity and leads; create, rename and delete, each through the
REST API's own handlers (gateway/api/teams.py), so the rules are the same: names unique
and not all digits, and a team with an announcement still going out cannot be deleted
(409, its message shown)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request, Response, status
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gateway.api.ids import IdPath
from gateway.api.schemas_teams import TeamCreate, TeamPatch
from gateway.api.scope import SessionDep
from gateway.api.stats import team_stats
from gateway.api.teams import create_team, patch_team, remove_team
from gateway.console.security import CurrentUser
from gateway.console.templating import render
from storage.models import Team, User

router = APIRouter()
STAFF = ("admin", "coordinator")
Name = Annotated[str, Form(max_length=400)]


def require_staff(user: CurrentUser) -> None:
    if user.user.role not in STAFF:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Only admins and coordinators manage teams.")


async def render_teams(
    request: Request,
    user: CurrentUser,
    session: AsyncSession,
    *,
    error: str | None = None,
    typed: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    ctx = request.app.state.ctx
    teams = list((await session.exec(select(Team).order_by(col(Team.name)))).all())
    ids = [t.id for t in teams if t.id is not None]
    leads: dict[int, list[User]] = {i: [] for i in ids}
    if ids:
        rows = await session.exec(
            select(User)
            .where(col(User.team_id).in_(ids), User.role == "team_lead", col(User.active))
            .order_by(col(User.email))
        )
        for lead in rows.all():
            leads[lead.team_id or 0].append(lead)
    entries: list[dict[str, Any]] = [
        {
            "team": t,
            "stats": await team_stats(str(t.id), ctx, session, user.principal),
            "leads": leads.get(t.id or 0, []),
        }
        for t in teams
    ]
    return render(
        request,
        "teams.html",
        {"entries": entries, "error": error, "typed": typed or {}},
        status_code=status_code,
    )


@router.get("/teams", include_in_schema=False)
async def teams_page(request: Request, user: CurrentUser, session: SessionDep) -> Response:
    require_staff(user)
    return await render_teams(request, user, session)


def _problem(exc: ValidationError) -> str:
    return "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())


def _see_teams() -> Response:
    return RedirectResponse("/console/teams", status_code=status.HTTP_303_SEE_OTHER)


@router.post("/teams", include_in_schema=False)
async def create(
    request: Request, user: CurrentUser, session: SessionDep, name: Name = ""
) -> Response:
    require_staff(user)
    try:
        await create_team(TeamCreate(name=name), user.principal, request.app.state.ctx, session)
    except ValidationError as exc:
        return await render_teams(
            request,
            user,
            session,
            error=f"Team name: {_problem(exc)}",
            typed={"new": name},
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        )
    except HTTPException as exc:
        await session.rollback()
        return await render_teams(
            request,
            user,
            session,
            error=str(exc.detail).capitalize() + ".",
            typed={"new": name},
            status_code=exc.status_code,
        )
    return _see_teams()


@router.post("/teams/{team_id:int}/name", include_in_schema=False)
async def rename(
    request: Request, team_id: IdPath, user: CurrentUser, session: SessionDep, name: Name = ""
) -> Response:
    require_staff(user)
    try:
        await patch_team(str(team_id), TeamPatch(name=name), user.principal, session)
    except ValidationError as exc:
        return await render_teams(
            request,
            user,
            session,
            error=f"New name: {_problem(exc)}",
            typed={str(team_id): name},
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        )
    except HTTPException as exc:
        if exc.status_code == status.HTTP_404_NOT_FOUND:
            raise
        await session.rollback()
        return await render_teams(
            request,
            user,
            session,
            error=str(exc.detail).capitalize() + ".",
            typed={str(team_id): name},
            status_code=exc.status_code,
        )
    return _see_teams()


@router.get("/teams/{team_id:int}/delete", include_in_schema=False)
async def confirm_delete(
    request: Request, team_id: IdPath, user: CurrentUser, session: SessionDep
) -> Response:
    """Deleting a team asks first, saying what happens to its members and leads."""
    require_staff(user)
    team = await session.get(Team, team_id)
    if team is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such team")
    stats = await team_stats(str(team_id), request.app.state.ctx, session, user.principal)
    return render(request, "team_delete.html", {"team": team, "stats": stats})


@router.post("/teams/{team_id:int}/delete", include_in_schema=False)
async def delete(
    request: Request, team_id: IdPath, user: CurrentUser, session: SessionDep
) -> Response:
    require_staff(user)
    try:
        await remove_team(str(team_id), user.principal, request.app.state.ctx, session)
    except HTTPException as exc:
        if exc.status_code != status.HTTP_409_CONFLICT:
            raise
        return await render_teams(
            request, user, session, error=f"Not deleted: {exc.detail}.", status_code=exc.status_code
        )
    return _see_teams()
