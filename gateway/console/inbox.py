"""The inbox (GET /console/): one entry per conversation the user may see, newest activity
first, with the supporter's name as the link, unread ones marked, the last message's
preview, channel, time and assignee. Filters are a GET form (so a filtered inbox is a link
to bookmark): "Unread", "Assigned to me", team, channel, status (open by default) and a
search by name, phone or email. Reads the same query as GET /api/v1/conversations (team
leads: their team only). `?fragment=1` answers the list alone (live updates swap it in)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response
from sqlmodel import col, select

from channels.base import ALL_CHANNELS
from gateway.api.conversations import conversation_page
from gateway.api.scope import SessionDep, lead_team
from gateway.console.security import CurrentUser
from gateway.console.templating import render
from routing.inbox.feed import newest_message_id
from routing.inbox.state import effective_status
from storage.models import Team, User
from storage.queries import last_messages

router = APIRouter()
PAGE_SIZE = 50
PREVIEW_CHARS = 120
STATUSES = ("open", "snoozed", "resolved", "all")


def preview(body: str | None) -> str:
    """One line of at most PREVIEW_CHARS characters (escaped by the template)."""
    text = " ".join((body or "").split())
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


@dataclass(frozen=True)
class Filters:
    unread: bool = False
    mine: bool = False
    team: str = ""
    channel: str = ""
    status: str = "open"
    q: str = ""

    def query(self, **extra: str) -> str:
        """The query string that reproduces these filters (defaults left out)."""
        params: dict[str, str] = {}
        if self.unread:
            params["unread"] = "1"
        if self.mine:
            params["mine"] = "1"
        for name in ("team", "channel", "q"):
            if getattr(self, name):
                params[name] = getattr(self, name)
        if self.status != "open":
            params["status"] = self.status
        params.update(extra)
        return urlencode(params)


def user_label(user: User) -> str:
    return user.name or user.email


async def inbox_context(
    request: Request, user: Any, session: SessionDep, filters: Filters, cursor: str | None
) -> dict[str, Any]:
    now = request.app.state.ctx.clock()
    team_id = lead_team(user.principal)
    teams_stmt = select(Team).order_by(col(Team.name))
    if team_id is not None:
        teams_stmt = teams_stmt.where(Team.id == team_id)
    teams = list((await session.exec(teams_stmt)).all())
    team = filters.team if any(str(t.id) == filters.team for t in teams) else None
    rows, next_cursor = await conversation_page(
        session,
        user.principal,
        unread=True if filters.unread else None,
        assigned_user_id=user.id if filters.mine else None,
        team=team,
        channel=filters.channel or None,
        status=None if filters.status == "all" else filters.status,
        search=filters.q or None,
        now=now,
        limit=PAGE_SIZE,
        cursor=cursor,
    )
    latest = await last_messages(session, [c.id for c, _ in rows if c.id is not None])
    assignee_ids = {c.assigned_user_id for c, _ in rows if c.assigned_user_id is not None}
    assignees: dict[int, str] = {}
    if assignee_ids:
        found = await session.exec(select(User).where(col(User.id).in_(assignee_ids)))
        assignees = {u.id: user_label(u) for u in found.all() if u.id is not None}
    entries = []
    for convo, name in rows:
        message = latest.get(convo.id or 0)
        entries.append(
            {
                "id": convo.id,
                "name": name,
                "unread": convo.unread,
                "unread_count": convo.unread_count,
                "at": convo.last_message_at or convo.created_at,
                "preview": preview(message.body) if message else "",
                "direction": message.direction if message else None,
                "channel": message.channel if message else None,
                "status": effective_status(convo, now),
                "assignee": assignees.get(convo.assigned_user_id or 0),
            }
        )
    return {
        "entries": entries,
        "next_cursor": next_cursor,
        "filters": filters,
        "teams": teams,
        "channels": ALL_CHANNELS,
        "statuses": STATUSES,
        "filtered": filters != Filters(),
        "newest": await newest_message_id(session),
        "older_url": "/console/?" + filters.query(cursor=next_cursor) if next_cursor else None,
        # Live updates refresh the first page only (a later page would jump back to it).
        "fragment_url": "/console/?" + filters.query(fragment="1") if cursor is None else None,
    }


@router.get("/", include_in_schema=False)
async def inbox(
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    unread: Annotated[str, Query(max_length=5)] = "",
    mine: Annotated[str, Query(max_length=5)] = "",
    team: Annotated[str, Query(max_length=20)] = "",
    channel: Annotated[str, Query(max_length=16)] = "",
    status: Annotated[str, Query(max_length=16)] = "open",
    q: Annotated[str, Query(max_length=200)] = "",
    fragment: Annotated[str, Query(max_length=5)] = "",
) -> Response:
    filters = Filters(
        unread=bool(unread),
        mine=bool(mine),
        team=team if team.isdigit() else "",
        channel=channel if channel in ALL_CHANNELS else "",
        status=status if status in STATUSES else "open",
        q=q.strip(),
    )
    context = await inbox_context(request, user, session, filters, cursor)
    template = "inbox_list.html" if fragment else "inbox.html"
    return render(request, template, context)
