"""Creating API keys (CLI and tests)."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from gateway.auth import ROLES, generate_key, hash_key
from gateway.settings import Settings
from storage.clock import utcnow
from storage.db import is_sqlite, make_engine, make_session_factory
from storage.migrate import upgrade
from storage.models import ApiKey
from storage.queries import find_team


async def insert_key(
    session: AsyncSession,
    *,
    role: str,
    team_id: int | None = None,
    name: str | None = None,
) -> str:
    """Add a key row (no commit) and return the key itself, which is never stored."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    if role == "team_lead" and team_id is None:
        raise ValueError("a team_lead key needs --team")
    key = generate_key()
    session.add(
        ApiKey(
            key_hash=hash_key(key),
            prefix=key[:8],
            role=role,
            team_id=team_id,
            name=name,
            created_at=utcnow(),
        )
    )
    return key


async def create_key(
    settings: Settings, *, role: str, team: str | None = None, name: str | None = None
) -> str:
    if is_sqlite(settings.database_url):
        await upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    try:
        async with make_session_factory(engine)() as session:
            team_id = None
            if team is not None:
                found = await find_team(session, team)
                if found is None:
                    raise ValueError(f"no team {team!r}")
                team_id = found.id
            key = await insert_key(session, role=role, team_id=team_id, name=name)
            await session.commit()
            return key
    finally:
        await engine.dispose()
