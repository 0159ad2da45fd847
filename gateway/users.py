"""Console user accounts: creating, listing, changing, deactivating (CLI, REST, console).

Emails are compared lower-cased; passwords are kept only as Argon2id hashes. Deactivating
a user or changing their password ends every session they have at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gateway.audit import record
from gateway.auth import ROLES
from gateway.keys import cli_session
from gateway.passwords import check_password, hash_password
from gateway.settings import Settings
from storage.clock import utcnow
from storage.models import ConsoleSession, Team, User
from storage.queries import find_team


class DuplicateEmail(ValueError):
    def __init__(self, email: str) -> None:
        super().__init__(f"a user with email {email} exists already")


class UserNotFound(LookupError):
    def __init__(self, user_id: int) -> None:
        super().__init__(f"no user with id {user_id}")


def normalize_email(email: str) -> str:
    """The stored form of an email (trimmed, lower-cased); ValueError if it is not one."""
    value = email.strip().lower()
    local, at, domain = value.partition("@")
    if not at or not local or "." not in domain or any(c.isspace() for c in value):
        raise ValueError("not an email address")
    if len(value) > 320:
        raise ValueError("an email address has at most 320 characters")
    return value


def check_role_team(role: str, has_team: bool) -> None:
    """A team_lead has a team and no other role has one (the rule API keys follow)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    if role == "team_lead" and not has_team:
        raise ValueError("a team_lead needs a team")
    if role != "team_lead" and has_team:
        raise ValueError(f"only a team_lead has a team; a {role} has none")


async def resolve_team(session: AsyncSession, ref: str | int | None) -> Team | None:
    if ref is None:
        return None
    team = await find_team(session, ref)
    if team is None:
        raise ValueError(f"no team {ref!r}")
    return team


async def create_user(
    session: AsyncSession,
    *,
    email: str,
    password: str,
    role: str,
    team_id: int | None = None,
    name: str | None = None,
    now: datetime,
    actor: str | None = None,
) -> User:
    """Insert and commit a user. Raises ValueError (bad email/role/team), PasswordTooShort
    and DuplicateEmail; nothing is stored then."""
    address = normalize_email(email)
    check_role_team(role, team_id is not None)
    row = User(
        email=address,
        name=name,
        role=role,
        team_id=team_id,
        password_hash=await hash_password(password),
        created_at=now,
    )
    session.add(row)
    try:
        await session.flush()
    except IntegrityError as exc:
        await session.rollback()
        raise DuplicateEmail(address) from exc
    record(session, "user_created", at=now, actor=actor, target=f"user:{row.id}")
    await session.commit()
    return row


async def end_sessions(session: AsyncSession, user_id: int) -> None:
    """Sign a user out everywhere (no commit)."""
    await session.execute(delete(ConsoleSession).where(col(ConsoleSession.user_id) == user_id))


async def update_user(
    session: AsyncSession,
    row: User,
    changes: dict[str, object],
    *,
    now: datetime,
    actor: str | None = None,
) -> User:
    """Apply `changes` (name, role, team_id, active, password) and commit. The role/team
    rule holds for the result; deactivating or a new password ends the user's sessions."""
    role = str(changes.get("role", row.role))
    team_id = changes["team_id"] if "team_id" in changes else row.team_id
    if "role" in changes and role != "team_lead" and "team_id" not in changes:
        team_id = None  # promoting a team lead drops their team
    check_role_team(role, team_id is not None)
    new_hash = None
    if "password" in changes:
        new_hash = await hash_password(str(changes["password"]))
    row.role = role
    row.team_id = team_id if isinstance(team_id, int) else None
    if "name" in changes:
        row.name = changes["name"] if isinstance(changes["name"], str) else None
    if "active" in changes:
        row.active = bool(changes["active"])
    if new_hash is not None:
        row.password_hash = new_hash
    session.add(row)
    assert row.id is not None
    if not row.active or new_hash is not None:
        await end_sessions(session, row.id)
    record(session, "user_updated", at=now, actor=actor, target=f"user:{row.id}")
    await session.commit()
    return row


async def list_users(
    session: AsyncSession, *, after: int | None = None, limit: int | None = None
) -> Sequence[tuple[User, str | None]]:
    """Users in id order, each with its team's name (team leads)."""
    query = (
        select(User, Team.name)
        .join(Team, col(User.team_id) == col(Team.id), isouter=True)
        .order_by(col(User.id))
    )
    if after is not None:
        query = query.where(col(User.id) > after)
    if limit is not None:
        query = query.limit(limit)
    return [(row, team) for row, team in (await session.exec(query)).all()]


async def cli_create_user(
    settings: Settings,
    *,
    email: str,
    password: str,
    role: str,
    team: str | None = None,
    name: str | None = None,
) -> User:
    """`rallypoint users create`: checks what it can before opening the database."""
    normalize_email(email)
    check_role_team(role, team is not None)
    check_password(password)  # PasswordTooShort before the database is opened or migrated
    async with cli_session(settings) as session:
        found = await resolve_team(session, team)
        return await create_user(
            session,
            email=email,
            password=password,
            role=role,
            team_id=found.id if found else None,
            name=name,
            now=utcnow(),
            actor="cli",
        )


async def cli_all_users(settings: Settings) -> Sequence[tuple[User, str | None]]:
    async with cli_session(settings) as session:
        return await list_users(session)


async def cli_deactivate(settings: Settings, user_id: int) -> User:
    async with cli_session(settings) as session:
        row = await session.get(User, user_id)
        if row is None:
            raise UserNotFound(user_id)
        return await update_user(session, row, {"active": False}, now=utcnow(), actor="cli")
