"""Creating, listing and revoking API keys (CLI, REST and tests)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gateway.audit import record
from gateway.auth import ROLES, generate_key, hash_key
from gateway.settings import Settings
from storage.clock import utcnow
from storage.db import is_sqlite, make_engine, make_session_factory
from storage.migrate import upgrade
from storage.models import ApiKey, Team
from storage.queries import find_team


class KeyNotFound(LookupError):
    def __init__(self, key_id: int) -> None:
        super().__init__(f"no API key with id {key_id}")


class LastAdminKey(ValueError):
    def __init__(self, key_id: int) -> None:
        super().__init__(
            f"key {key_id} is the last active admin key; create another admin key first"
            " (rallypoint keys create --role admin), then revoke this one"
        )


def check_role_team(role: str, has_team: bool) -> None:
    """A team_lead key has a team, and no other key has one (as POST /keys rules)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    if role == "team_lead" and not has_team:
        raise ValueError("a team_lead key needs --team")
    if role != "team_lead" and has_team:
        raise ValueError(f"only a team_lead key has a team; drop --team for a {role} key")


def make_key(
    *,
    role: str,
    team_id: int | None = None,
    name: str | None = None,
    now: datetime | None = None,
    expires_at: datetime | None = None,
) -> tuple[ApiKey, str]:
    """A key row (not yet added) and the key itself, which is never stored."""
    check_role_team(role, team_id is not None)
    key = generate_key()
    row = ApiKey(
        key_hash=hash_key(key),
        prefix=key[:8],
        role=role,
        team_id=team_id,
        name=name,
        created_at=now or utcnow(),
        expires_at=expires_at,
    )
    return row, key


async def insert_key(
    session: AsyncSession,
    *,
    role: str,
    team_id: int | None = None,
    name: str | None = None,
    expires_at: datetime | None = None,
) -> str:
    """Add a key row (no commit) and return the key itself, which is never stored."""
    row, key = make_key(role=role, team_id=team_id, name=name, expires_at=expires_at)
    session.add(row)
    return key


async def revoke_key(session: AsyncSession, key_id: int, now: datetime) -> ApiKey:
    """Mark a key revoked (no commit); a key revoked before keeps its time. The last
    active admin key is refused, so the API always has an admin.

    The active admin keys are locked first, in id order (PostgreSQL; SQLite's write lock
    is taken at BEGIN), so two admins revoking each other's keys at once cannot both win.
    """
    admins = (
        await session.exec(
            select(ApiKey.id)
            .where(ApiKey.role == "admin", col(ApiKey.revoked_at).is_(None))
            .order_by(col(ApiKey.id))
            .with_for_update()
        )
    ).all()
    row = (await session.exec(select(ApiKey).where(ApiKey.id == key_id).with_for_update())).first()
    if row is None:
        raise KeyNotFound(key_id)
    if row.revoked_at is not None:
        return row
    if row.role == "admin" and len(admins) <= 1:
        raise LastAdminKey(key_id)
    row.revoked_at = now
    session.add(row)
    return row


async def list_keys(
    session: AsyncSession, *, after: int | None = None, limit: int | None = None
) -> list[tuple[ApiKey, str | None]]:
    """Keys in id order, each with its team's name (team_lead keys)."""
    query = (
        select(ApiKey, Team.name)
        .join(Team, col(ApiKey.team_id) == col(Team.id), isouter=True)
        .order_by(col(ApiKey.id))
    )
    if after is not None:
        query = query.where(col(ApiKey.id) > after)
    if limit is not None:
        query = query.limit(limit)
    return [(row, team) for row, team in (await session.exec(query)).all()]


@asynccontextmanager
async def cli_session(settings: Settings) -> AsyncIterator[AsyncSession]:
    """A session for a CLI command (the embedded SQLite database is migrated first)."""
    if is_sqlite(settings.database_url):
        await upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    try:
        async with make_session_factory(engine)() as session:
            yield session
    finally:
        await engine.dispose()


_DURATION = re.compile(r"([1-9][0-9]{0,4})([hdw])")
_UNITS = {"h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """`90d`, `12h` or `2w` as a timedelta; ValueError otherwise."""
    found = _DURATION.fullmatch(text.strip())
    if found is None:
        raise ValueError(f"--expires-in: {text!r} is not a duration like 90d, 12h or 2w")
    return timedelta(**{_UNITS[found[2]]: int(found[1])})


async def create_key(
    settings: Settings,
    *,
    role: str,
    team: str | None = None,
    name: str | None = None,
    expires_in: timedelta | None = None,
) -> str:
    check_role_team(role, team is not None)  # before the database is opened or migrated
    async with cli_session(settings) as session:
        team_id = None
        if team is not None:
            found = await find_team(session, team)
            if found is None:
                raise ValueError(f"no team {team!r}")
            team_id = found.id
        now = utcnow()
        expires_at = now + expires_in if expires_in is not None else None
        row, key = make_key(role=role, team_id=team_id, name=name, now=now, expires_at=expires_at)
        session.add(row)
        await session.flush()
        record(session, "key_created", at=now, actor="cli", target=f"key:{row.id}")
        await session.commit()
        return key


async def all_keys(settings: Settings) -> list[tuple[ApiKey, str | None]]:
    async with cli_session(settings) as session:
        return await list_keys(session)


async def revoke(settings: Settings, key_id: int) -> tuple[ApiKey, bool]:
    """Revoke a key from the CLI: the row, and whether it was revoked only now."""
    async with cli_session(settings) as session:
        now = utcnow()
        row = await revoke_key(session, key_id, now)
        if row.revoked_at == now:
            record(session, "key_revoked", at=now, actor="cli", target=f"key:{row.id}")
        await session.commit()
        return row, row.revoked_at == now
