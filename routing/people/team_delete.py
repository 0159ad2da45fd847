"""Deleting a team, and what becomes of everything that refers to it, in the caller's
transaction:

- memberships: removed; the supporters stay, in their other teams;
- check-ins: deleted (they cannot run without their team);
- API keys: team-lead keys scoped to it are revoked, and every key is detached from it
  (`team_id` NULL), so they stay listed but never authenticate again (gateway/auth.py
  also refuses a team-lead key without a team): a lead's key never widens to "no team";
- console users: the team's leads are deactivated and detached, their sessions ended;
- announcements, polls and their messages and reports: kept, their audience and
  `team_scope_id` still naming the team's id (team ids are never reused: storage/models.py);
- onboarding: `offered_teams` keeps the id, and an answer naming it is asked again
  (routing/organizing/onboarding.py).

An announcement to the team that is still fanning out, or fanned out but scheduled for
later, makes the delete fail (TeamBusy): the fan-out would miss members, or former members
would hear from a team that is gone. Cancel it or wait until it is sent.

The delete and an announcement naming the team take the team's row lock (`delete_team`
FOR UPDATE, `keep_teams` FOR SHARE on PostgreSQL; SQLite's write lock is taken at BEGIN),
so one waits for the other: an announcement committed first is seen by the delete's
check, and one resolved while the delete is in progress finds the team gone.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, delete, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from routing.outbound.audience import Audience
from storage.models import (
    Announcement,
    ApiKey,
    Checkin,
    ConsoleSession,
    Team,
    TeamMembership,
    User,
)

# Every foreign key to teams.id, each handled above. A new one makes tests fail until it
# is handled here: deleting the team would otherwise cascade and silently lose its rows.
HANDLED_REFERENCES = frozenset(
    {
        ("api_keys", "team_id"),
        ("checkins", "team_id"),
        ("team_memberships", "team_id"),
        ("users", "team_id"),
    }
)


class TeamGone(LookupError):
    """Deleted by someone else meanwhile."""


class TeamBusy(Exception):
    def __init__(self, announcement_ids: list[int]) -> None:
        self.announcement_ids = announcement_ids
        super().__init__(
            "announcements to this team are still going out: "
            + ", ".join(str(i) for i in announcement_ids)
            + "; cancel them or wait until they are sent, then delete the team"
        )


async def unsent_announcements(session: AsyncSession, team_id: int, now: datetime) -> list[int]:
    """Announcements to the team still fanning out, or scheduled for later."""
    rows = await session.exec(
        select(Announcement)
        .where(
            or_(
                col(Announcement.state) == "pending",
                and_(col(Announcement.state) == "fanned_out", col(Announcement.send_at) > now),
            )
        )
        .order_by(col(Announcement.id))
    )
    return [
        a.id
        for a in rows.all()
        if a.id is not None
        and (a.team_scope_id == team_id or team_id in Audience.from_dict(a.audience or {}).teams)
    ]


async def keep_teams(session: AsyncSession, team_ids: Sequence[int]) -> set[int]:
    """Lock these teams against deletion until the transaction ends (shared: announcements
    to one team do not wait for each other); the ids of those that still exist. Waits for
    a delete in progress, whose team is then gone."""
    if not team_ids:
        return set()
    rows = await session.execute(
        select(col(Team.id))
        .where(col(Team.id).in_(sorted(set(team_ids))))
        .order_by(col(Team.id))
        .with_for_update(read=True)
    )
    return set(rows.scalars())


async def delete_team(session: AsyncSession, team_id: int, now: datetime) -> None:
    """Delete the team as the module says (no commit). Raises TeamBusy (roll back then)
    and TeamGone."""
    locked = await session.execute(
        select(col(Team.id)).where(col(Team.id) == team_id).with_for_update()
    )
    if locked.first() is None:
        raise TeamGone(team_id)
    keys = col(ApiKey.team_id) == team_id
    await session.execute(
        update(ApiKey)
        .where(keys, col(ApiKey.role) == "team_lead", col(ApiKey.revoked_at).is_(None))
        .values(revoked_at=now)
    )
    await session.execute(update(ApiKey).where(keys).values(team_id=None))
    # The team's leads lose their console access with it (signed out at once), as their keys.
    leads = select(col(User.id)).where(col(User.team_id) == team_id)
    await session.execute(delete(ConsoleSession).where(col(ConsoleSession.user_id).in_(leads)))
    await session.execute(
        update(User).where(col(User.team_id) == team_id).values(team_id=None, active=False)
    )
    await session.execute(delete(TeamMembership).where(col(TeamMembership.team_id) == team_id))
    await session.execute(delete(Checkin).where(col(Checkin.team_id) == team_id))
    await session.execute(delete(Team).where(col(Team.id) == team_id))
    # Looked for last: on PostgreSQL an announcement committed while the deletes above
    # waited for a row lock (a check-in being claimed right now) is seen here.
    busy = await unsent_announcements(session, team_id, now)
    if busy:
        raise TeamBusy(busy)
