"""Request-scoped database sessions and what a key may see: a team lead sees only the
supporters (and their conversations and messages) of their own team; outside it, 404."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, HTTPException, status
from fastapi.exceptions import RequestValidationError
from sqlmodel.ext.asyncio.session import AsyncSession

from gateway.auth import Context, Principal
from storage.models import Conversation, Supporter, Team, TeamMembership
from storage.queries import find_team, in_team


async def get_session(ctx: Context) -> AsyncIterator[AsyncSession]:
    async with ctx.sessions() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


def not_found(what: str = "supporter") -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"no such {what}")


def lead_team(principal: Principal) -> int | None:
    """The team a team lead is confined to; None for roles that see everything."""
    if not principal.is_team_lead:
        return None
    # A team_lead key always has a team (keys.insert_key insists); -1 matches nothing.
    return principal.team_id if principal.team_id is not None else -1


def supporter_scope(principal: Principal) -> Any | None:
    """A WHERE clause limiting supporters to what `principal` may see, or None."""
    team_id = lead_team(principal)
    return None if team_id is None else in_team(team_id)


async def may_see_supporter(session: AsyncSession, principal: Principal, supporter_id: int) -> bool:
    team_id = lead_team(principal)
    if team_id is None:
        return True
    found = await session.get(TeamMembership, (supporter_id, team_id))
    return found is not None


async def visible_supporter(
    session: AsyncSession, principal: Principal, supporter_id: int
) -> Supporter:
    supporter = await session.get(Supporter, supporter_id)
    if supporter is None or not await may_see_supporter(session, principal, supporter_id):
        raise not_found()
    return supporter


async def visible_conversation(
    session: AsyncSession, principal: Principal, conversation_id: int
) -> Conversation:
    convo = await session.get(Conversation, conversation_id)
    if convo is None or not await may_see_supporter(session, principal, convo.supporter_id):
        raise not_found("conversation")
    return convo


async def visible_team(session: AsyncSession, principal: Principal, ref: str) -> Team:
    team = await find_team(session, ref)
    if team is None or (principal.is_team_lead and team.id != principal.team_id):
        raise not_found("team")
    return team


async def team_filter(session: AsyncSession, ref: str | None) -> int | None:
    """The id of the team a `?team=` query names (id or name); unknown → 422."""
    if ref is None or ref == "":
        return None
    team = await find_team(session, ref)
    if team is None:
        raise RequestValidationError(
            [{"loc": ("query", "team"), "msg": f"no team {ref!r}", "type": "value_error"}]
        )
    assert team.id is not None
    return team.id


async def visible_rows(
    stmt: Any, session: AsyncSession, principal: Principal, team: str | None
) -> Any:
    """`stmt` limited to the supporters `principal` may see and, if `?team=` is given, to
    that team's."""
    scope = supporter_scope(principal)
    if scope is not None:
        stmt = stmt.where(scope)
    team_id = await team_filter(session, team)
    if team_id is not None:
        stmt = stmt.where(in_team(team_id))
    return stmt
