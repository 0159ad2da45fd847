"""/api/v1/keys: admins list, create and revoke API keys. A key is shown once, when it is
made; listings carry its first characters (`prefix`) to tell keys apart, never the key or
its hash. Revoked keys stay listed, with `revoked_at`."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, HTTPException, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import AwareDatetime, BaseModel, Field, model_validator

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
from gateway.api.problems import errors
from gateway.api.schemas_supporters import TeamRef
from gateway.api.scope import SessionDep
from gateway.audit import record, request_ip
from gateway.auth import ROLES, Admin, Context
from gateway.keys import KeyNotFound, LastAdminKey, list_keys, make_key, revoke_key
from storage.models import ApiKey
from storage.queries import find_team

router = APIRouter(prefix="/keys", tags=["keys"])


class KeyCreate(BaseModel):
    role: str = Field(pattern="^(" + "|".join(ROLES) + ")$")
    team: str | int | None = Field(None, description="team id or name; team_lead keys only")
    name: str | None = Field(None, max_length=200, description="a label for the key")
    expires_at: AwareDatetime | None = Field(
        None, description="refused from this moment on (with a time zone); null: never"
    )

    @model_validator(mode="after")
    def _team_for_team_leads(self) -> KeyCreate:
        if (self.role == "team_lead") != (self.team is not None):
            raise ValueError("a team_lead key needs a team, and only a team_lead key has one")
        return self


class KeyPublic(BaseModel):
    id: int
    role: str
    team: TeamRef | None
    name: str | None
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    expires_at: datetime | None


class KeyCreated(KeyPublic):
    key: str = Field(description="the key itself: shown this once, only its hash is stored")


def public(row: ApiKey, team: str | None) -> KeyPublic:
    return KeyPublic(
        id=row.id or 0,
        role=row.role,
        team=TeamRef(id=row.team_id, name=team or "") if row.team_id is not None else None,
        name=row.name,
        prefix=row.prefix,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
        expires_at=row.expires_at,
    )


@router.get("", response_model=Page[KeyPublic])
async def get_keys(
    _principal: Admin,
    session: SessionDep,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[KeyPublic]:
    """Every key, revoked ones too, oldest first."""
    after = decode_cursor(cursor, (int,))
    rows = await list_keys(session, after=after[0] if after else None, limit=limit + 1)
    page, more = split_page(rows, limit)
    return Page(
        items=[public(row, team) for row, team in page],
        next_cursor=encode_cursor(page[-1][0].id) if more else None,
    )


@router.post("", status_code=status.HTTP_201_CREATED, response_model=KeyCreated)
async def create_key(
    body: KeyCreate, request: Request, principal: Admin, ctx: Context, session: SessionDep
) -> KeyCreated:
    team = None
    if body.team is not None:
        team = await find_team(session, body.team)
        if team is None:
            raise RequestValidationError(
                [{"loc": ("body", "team"), "msg": f"no team {body.team!r}", "type": "value_error"}]
            )
    now = ctx.clock()
    row, key = make_key(
        role=body.role,
        team_id=team.id if team else None,
        name=body.name,
        now=now,
        expires_at=body.expires_at,
    )
    session.add(row)
    await session.flush()
    actor, ip = principal.label, request_ip(request)
    record(session, "key_created", at=now, actor=actor, target=f"key:{row.id}", ip=ip)
    await session.commit()
    return KeyCreated(**public(row, team.name if team else None).model_dump(), key=key)


@router.delete(
    "/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors({409: "the last active admin key cannot be revoked"}),
)
async def delete_key(
    key_id: IdPath, request: Request, principal: Admin, ctx: Context, session: SessionDep
) -> Response:
    """Revoke: the key is refused from its next request on; its row stays, listed as revoked."""
    now = ctx.clock()
    try:
        row = await revoke_key(session, key_id, now)
    except KeyNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such key") from exc
    except LastAdminKey as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    if row.revoked_at == now:
        actor, ip = principal.label, request_ip(request)
        record(session, "key_revoked", at=now, actor=actor, target=f"key:{key_id}", ip=ip)
    await session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
