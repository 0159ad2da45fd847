"""API keys: only a SHA-256 hash is stored (keys are 256-bit random, so no slow hash is needed)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import update
from sqlmodel import col, select

from gateway.context import GatewayContext
from storage.models import ApiKey

ROLES = ("admin", "coordinator", "team_lead")
KEY_PREFIX = "rp_"
# `last_used_at` is written when it is at least this old: one write a minute per busy key,
# not one per request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    key_id: int | None
    role: str
    team_id: int | None = None
    # Set for a console user (gateway/console): acting as that user, not as a key.
    user_id: int | None = None

    @property
    def is_team_lead(self) -> bool:
        return self.role == "team_lead"

    @property
    def label(self) -> str:
        if self.user_id is not None:
            return f"user:{self.user_id}"
        return f"key:{self.key_id}"


_bearer = HTTPBearer(auto_error=False)


def get_context(request: Request) -> GatewayContext:
    ctx: GatewayContext = request.app.state.ctx
    return ctx


Context = Annotated[GatewayContext, Depends(get_context)]


async def authenticate(
    ctx: Context,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    unauthorized = HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        "missing or invalid API key",
        headers={"WWW-Authenticate": "Bearer"},
    )
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise unauthorized
    digest = hash_key(credentials.credentials)
    # No cache: a key revoked a moment ago is refused on its very next request.
    async with ctx.sessions() as session:
        row = (await session.exec(select(ApiKey).where(ApiKey.key_hash == digest))).first()
        if row is None or row.revoked_at is not None:
            raise unauthorized
        if row.role == "team_lead" and row.team_id is None:  # its team was deleted
            raise unauthorized
        now = ctx.clock()
        if row.expires_at is not None and now >= row.expires_at:
            raise unauthorized
        if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
            await session.exec(
                update(ApiKey).where(col(ApiKey.id) == row.id).values(last_used_at=now)
            )
            await session.commit()
    wait = ctx.api_rate.take(int(row.id or 0), now.timestamp())
    if wait is not None:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            "too many requests with this API key (RALLYPOINT_API_RATE_PER_MINUTE)",
            headers={"Retry-After": str(wait)},
        )
    return Principal(key_id=row.id, role=row.role, team_id=row.team_id)


CurrentPrincipal = Annotated[Principal, Depends(authenticate)]


def require_roles(*roles: str):  # type: ignore[no-untyped-def]
    """A dependency that answers 403 unless the key's role is one of `roles`."""

    async def check(principal: CurrentPrincipal) -> Principal:
        if principal.role not in roles:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"role {principal.role} may not do this")
        return principal

    return Depends(check)


AnyRole = Annotated[Principal, require_roles("admin", "coordinator", "team_lead")]
Staff = Annotated[Principal, require_roles("admin", "coordinator")]
Admin = Annotated[Principal, require_roles("admin")]
