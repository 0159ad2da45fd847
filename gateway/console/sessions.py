"""Console sessions and the sign-in throttle, both kept in the database so they hold
across processes (several `serve` workers, a restart).

A session is a random token in an HttpOnly cookie; the database keeps only its SHA-256
(like API keys), so a copy of the database signs no one in. It ends on "Sign out", when
the user is deactivated or changes password (gateway/users.end_sessions), or after
RALLYPOINT_SESSION_HOURS without a request.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gateway.auth import Principal
from storage.models import ConsoleSession, SignInThrottle, User

# last_seen_at is written when it is at least this old: not one write per page view.
TOUCH_RESOLUTION = timedelta(minutes=1)
MAX_FAILURES = 10
FAILURE_WINDOW = timedelta(minutes=15)
LOCKOUT = timedelta(minutes=15)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class ConsoleUser:
    """The signed-in user of a console request (the `current_user` dependency)."""

    user: User
    session_id: int
    csrf_token: str

    @property
    def id(self) -> int:
        assert self.user.id is not None
        return self.user.id

    @property
    def principal(self) -> Principal:
        """What the REST API's scope helpers take (gateway/api/scope.py): a team lead is
        confined to their team exactly as a team-lead key is."""
        return Principal(
            key_id=None, role=self.user.role, team_id=self.user.team_id, user_id=self.id
        )

    @property
    def display_name(self) -> str:
        return self.user.name or self.user.email


async def open_session(session: AsyncSession, user: User, now: datetime) -> str:
    """Start a session for `user` (no commit) and return the cookie's token."""
    assert user.id is not None
    token = secrets.token_urlsafe(32)
    session.add(
        ConsoleSession(
            token_hash=token_hash(token),
            user_id=user.id,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            last_seen_at=now,
        )
    )
    user.last_sign_in_at = now
    session.add(user)
    return token


async def load_session(
    session: AsyncSession, token: str | None, now: datetime, idle: timedelta
) -> ConsoleUser | None:
    """The user a cookie's token signs in, or None: unknown, idle too long (the row is
    then deleted), user inactive, or a team lead without a team. Commits a touch."""
    if not token:
        return None
    found = (
        await session.exec(
            select(ConsoleSession, User)
            .join(User, col(User.id) == col(ConsoleSession.user_id))
            .where(ConsoleSession.token_hash == token_hash(token))
        )
    ).first()
    if found is None:
        return None
    row, user = found
    assert row.id is not None
    if now - row.last_seen_at > idle or not user.active:
        await session.execute(delete(ConsoleSession).where(col(ConsoleSession.id) == row.id))
        await session.commit()
        return None
    if user.role == "team_lead" and user.team_id is None:
        return None
    if now - row.last_seen_at >= TOUCH_RESOLUTION:
        await session.execute(
            update(ConsoleSession).where(col(ConsoleSession.id) == row.id).values(last_seen_at=now)
        )
        await session.commit()
    return ConsoleUser(user=user, session_id=row.id, csrf_token=row.csrf_token)


async def end_session(session: AsyncSession, token: str | None) -> None:
    """Sign out (no commit): the token no longer signs anyone in."""
    if token:
        await session.execute(
            delete(ConsoleSession).where(col(ConsoleSession.token_hash) == token_hash(token))
        )


async def is_locked(session: AsyncSession, email: str, now: datetime) -> bool:
    """Whether sign-ins for `email` are refused (429) right now, right password or not."""
    row = await session.get(SignInThrottle, email)
    return row is not None and row.locked_until is not None and row.locked_until > now


async def note_failure(session: AsyncSession, email: str, now: datetime) -> None:
    """Count a failed sign-in (no commit); the MAX_FAILURES-th within FAILURE_WINDOW locks
    the email for LOCKOUT."""
    row = (
        await session.exec(
            select(SignInThrottle).where(SignInThrottle.email == email).with_for_update()
        )
    ).first()
    if row is None:
        row = SignInThrottle(email=email, failures=0, window_start=now)
    if now - row.window_start > FAILURE_WINDOW:
        row.failures, row.window_start = 0, now
    row.failures += 1
    if row.failures >= MAX_FAILURES:
        row.locked_until = now + LOCKOUT
        row.failures, row.window_start = 0, now
    session.add(row)


async def clear_failures(session: AsyncSession, email: str) -> None:
    await session.execute(delete(SignInThrottle).where(col(SignInThrottle.email) == email))
