"""/api/v1/users: admins create, list and change console users. A password goes in and
never comes out (nor its hash); a 422 never echoes what was sent (it may be a password)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

from gateway.api.pagination import (
    DEFAULT_LIMIT,
    Cursor,
    Limit,
    Page,
    decode_cursor,
    encode_cursor,
    split_page,
)
from gateway.api.schemas_supporters import TeamRef
from gateway.api.scope import SessionDep
from gateway.auth import ROLES, Admin, Context
from gateway.passwords import MIN_PASSWORD_LENGTH, PasswordTooShort
from gateway.users import DuplicateEmail, create_user, list_users, resolve_team, update_user
from storage.models import Team, User


class _NoEchoRoute(APIRoute):
    """Drops `input` (the submitted values, a password among them) from 422 answers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def quiet(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                errors = [{k: v for k, v in e.items() if k != "input"} for e in exc.errors()]
                raise RequestValidationError(errors) from None

        return quiet


router = APIRouter(prefix="/users", tags=["users"], route_class=_NoEchoRoute)
ROLE_PATTERN = "^(" + "|".join(ROLES) + ")$"


def _invalid(field: str, message: str) -> RequestValidationError:
    return RequestValidationError([{"loc": ("body", field), "msg": message, "type": "value_error"}])


class UserCreate(BaseModel):
    email: str = Field(max_length=320)
    password: str = Field(max_length=1024, description=f"at least {MIN_PASSWORD_LENGTH} characters")
    role: str = Field(pattern=ROLE_PATTERN)
    team: str | int | None = Field(None, description="team id or name; team leads only")
    name: str | None = Field(None, max_length=200)


class UserUpdate(BaseModel):
    """Only the fields sent change. `team: null` clears it (for a role other than team_lead)."""

    name: str | None = Field(None, max_length=200)
    role: str | None = Field(None, pattern=ROLE_PATTERN)
    team: str | int | None = None
    active: bool | None = None
    password: str | None = Field(None, max_length=1024)


class UserPublic(BaseModel):
    id: int
    email: str
    name: str | None
    role: str
    team: TeamRef | None
    active: bool
    created_at: datetime
    last_sign_in_at: datetime | None


def public(row: User, team: str | None) -> UserPublic:
    return UserPublic(
        id=row.id or 0,
        email=row.email,
        name=row.name,
        role=row.role,
        team=TeamRef(id=row.team_id, name=team or "") if row.team_id is not None else None,
        active=row.active,
        created_at=row.created_at,
        last_sign_in_at=row.last_sign_in_at,
    )


async def _team(session: SessionDep, ref: str | int | None) -> Team | None:
    try:
        return await resolve_team(session, ref)
    except ValueError as exc:
        raise _invalid("team", str(exc)) from None


@router.get("", response_model=Page[UserPublic])
async def get_users(
    _principal: Admin, session: SessionDep, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> Page[UserPublic]:
    """Every user, inactive ones too, oldest first."""
    after = decode_cursor(cursor, (int,))
    rows = await list_users(session, after=after[0] if after else None, limit=limit + 1)
    page, more = split_page(list(rows), limit)
    return Page(
        items=[public(row, team) for row, team in page],
        next_cursor=encode_cursor(page[-1][0].id) if more else None,
    )


@router.post("", status_code=status.HTTP_201_CREATED, response_model=UserPublic)
async def post_user(
    body: UserCreate, principal: Admin, ctx: Context, session: SessionDep
) -> UserPublic:
    """A console user; 409 if the email (compared case-insensitively) is taken."""
    team = await _team(session, body.team)
    try:
        row = await create_user(
            session,
            email=body.email,
            password=body.password,
            role=body.role,
            team_id=team.id if team else None,
            name=body.name,
            now=ctx.clock(),
            actor=principal.label,
        )
    except DuplicateEmail as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    except PasswordTooShort as exc:
        raise _invalid("password", str(exc)) from None
    except ValueError as exc:
        field = "email" if "email" in str(exc) else "role"
        raise _invalid(field, str(exc)) from None
    return public(row, team.name if team else None)


@router.patch("/{user_id}", response_model=UserPublic)
async def patch_user(
    user_id: int, body: UserUpdate, principal: Admin, ctx: Context, session: SessionDep
) -> UserPublic:
    """Change name, role, team, active or password. `active: false` or a new password
    signs the user out everywhere at once."""
    row = await session.get(User, user_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such user")
    changes: dict[str, object] = {
        k: v for k, v in body.model_dump(exclude_unset=True).items() if k != "team"
    }
    if "team" in body.model_fields_set:
        team = await _team(session, body.team)
        changes["team_id"] = team.id if team else None
    for field in ("role", "active", "password"):
        if field in changes and changes[field] is None:
            raise _invalid(field, f"{field} cannot be null")
    try:
        row = await update_user(session, row, changes, now=ctx.clock(), actor=principal.label)
    except PasswordTooShort as exc:
        raise _invalid("password", str(exc)) from None
    except ValueError as exc:
        raise _invalid("team" if "team" in str(exc) else "role", str(exc)) from None
    team_name = None
    if row.team_id is not None:
        found = await session.get(Team, row.team_id)
        team_name = found.name if found else None
    return public(row, team_name)
