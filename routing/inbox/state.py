"""Conversation status (open / resolved / snoozed until a time) and assignment to a
console user: the one code path for the REST API and the console.

A snoozed conversation whose `snoozed_until` has passed counts as open (it comes back
to the inbox by itself, no job needed), and a new inbound message reopens a resolved or
snoozed one (routing/inbound stores it so).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, not_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import CONVERSATION_STATUSES, Conversation, TeamMembership, User


class InboxError(ValueError):
    """Bad input for an inbox change: `field` names what was wrong (422, nothing stored)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def effective_status(convo: Conversation, now: datetime) -> str:
    """ "snoozed" only while `snoozed_until` is ahead; a due snooze is open again."""
    if convo.status == "snoozed" and (convo.snoozed_until is None or convo.snoozed_until <= now):
        return "open"
    return convo.status


def status_clause(status: str, now: datetime) -> Any:
    """A WHERE clause for conversations whose effective status is `status`."""
    snoozed = col(Conversation.status) == "snoozed"
    if status == "open":
        # Not resolved and not snoozed for now. Said so, and not as "open, or snoozed
        # until the past", because no index can hand out the rows of two statuses in
        # activity order: open is most conversations, so the inbox walks its activity
        # index and skips the others (resolved and snoozed have their own index).
        return and_(
            col(Conversation.status) != "resolved",
            # (is_not(None): a NULL would make the whole NOT unknown, and drop the row)
            not_(
                and_(
                    snoozed,
                    col(Conversation.snoozed_until).is_not(None),
                    col(Conversation.snoozed_until) > now,
                )
            ),
        )
    if status == "snoozed":
        return and_(snoozed, col(Conversation.snoozed_until) > now)
    if status == "resolved":
        return col(Conversation.status) == "resolved"
    raise InboxError("status", f"status must be one of {', '.join(CONVERSATION_STATUSES)}")


def set_status(
    convo: Conversation, status: str, *, now: datetime, snoozed_until: datetime | None = None
) -> None:
    """Resolve, reopen or snooze `convo` (no commit). Snoozing needs a time ahead of now."""
    if status not in CONVERSATION_STATUSES:
        raise InboxError("status", f"status must be one of {', '.join(CONVERSATION_STATUSES)}")
    if status == "snoozed":
        if snoozed_until is None:
            raise InboxError("snoozed_until", "snoozing needs a time to snooze until")
        if snoozed_until.tzinfo is None:
            raise InboxError("snoozed_until", "give the time with its UTC offset")
        if snoozed_until <= now:
            raise InboxError("snoozed_until", "the snooze must end in the future")
        convo.snoozed_until = snoozed_until
    elif snoozed_until is not None:
        raise InboxError("snoozed_until", "only a snoozed conversation has snoozed_until")
    else:
        convo.snoozed_until = None
    convo.status = status


async def assignable_users(session: AsyncSession, lead_team: int | None) -> list[User]:
    """Active console users a conversation may be assigned to, by name: for a team lead
    (`lead_team` set) only the leads of that team."""
    stmt = select(User).where(col(User.active).is_(True))
    if lead_team is not None:
        stmt = stmt.where(User.team_id == lead_team)
    rows = await session.exec(stmt.order_by(col(User.name), col(User.email)))
    return list(rows.all())


async def assign(
    session: AsyncSession,
    convo: Conversation,
    user_id: int | None,
    *,
    lead_team: int | None,
) -> User | None:
    """Assign `convo` to console user `user_id` (None: unassign; no commit). The user must
    be active, within a team lead's team when `lead_team` is set, and able to see the
    conversation (a team lead of another team cannot)."""
    if user_id is None:
        convo.assigned_user_id = None
        return None
    user = await session.get(User, user_id)
    if user is None or not user.active or (lead_team is not None and user.team_id != lead_team):
        raise InboxError("assigned_user_id", f"no active user {user_id} to assign to")
    if user.role == "team_lead":
        member = None
        if user.team_id is not None:
            member = await session.get(TeamMembership, (convo.supporter_id, user.team_id))
        if member is None:
            raise InboxError(
                "assigned_user_id", "that team lead cannot see this supporter (not in their team)"
            )
    convo.assigned_user_id = user.id
    return user
