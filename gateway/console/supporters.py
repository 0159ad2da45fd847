"""The supporter list (GET /console/supporters): search by name, phone or email, filters
(team, tag, channel, opted out, inactive N days), a page of supporters with their channels,
teams, tags, last inbound and consent state, and tagging in bulk (POST
/console/supporters/tags). Reads and writes through the same functions as GET
/api/v1/supporters and POST /api/v1/supporters/tags; a team lead sees only their team."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, HTTPException, Query, Request, Response, status
from fastapi.responses import RedirectResponse
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from channels.base import ALL_CHANNELS
from gateway.api.scope import SessionDep
from gateway.api.supporter_search import SupporterFilters, supporter_page
from gateway.api.supporter_tags import MAX_BULK, SupporterId, tag_supporters
from gateway.console.security import CurrentUser
from gateway.console.templating import render
from routing.people.supporters import FieldError
from storage.models import Team
from storage.queries import addresses_by_supporter, tags_by_supporter, teams_by_supporter

router = APIRouter()
PAGE_SIZE = 50
MAX_INACTIVE_DAYS = 36500
Text = Annotated[str, Query(max_length=200)]


async def teams_for(session: AsyncSession, user: CurrentUser) -> list[Team]:
    """The teams this user may pick: all of them, or a team lead's own."""
    stmt = select(Team).order_by(col(Team.name))
    if user.principal.is_team_lead:
        stmt = stmt.where(Team.id == user.principal.team_id)
    return list((await session.exec(stmt)).all())


def parse_filters(params: dict[str, str]) -> tuple[SupporterFilters, str | None]:
    """The filters as typed; an unusable value is dropped and named in the error."""
    error = None
    inactive: int | None = None
    raw = params["inactive"].strip()
    if raw:
        if raw.isdigit() and int(raw) <= MAX_INACTIVE_DAYS:
            inactive = int(raw)
        else:
            error = f"Inactive for: give a whole number of days (0 to {MAX_INACTIVE_DAYS})."
    channel = params["channel"] if params["channel"] in ALL_CHANNELS else None
    opted = {"yes": True, "no": False}.get(params["opted_out"])
    return (
        SupporterFilters(
            q=params["q"] or None,
            team=params["team"] or None,
            tag=params["tag"].strip() or None,
            channel=channel,
            opted_out=opted,
            inactive_days=inactive,
        ),
        error,
    )


@router.get("/supporters", include_in_schema=False)
async def supporter_list(
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    q: Text = "",
    team: Text = "",
    tag: Text = "",
    channel: Text = "",
    opted_out: Text = "",
    inactive: Text = "",
    cursor: Text = "",
    changed: Annotated[int | None, Query(ge=0)] = None,
) -> Response:
    params = {
        "q": q,
        "team": team,
        "tag": tag,
        "channel": channel,
        "opted_out": opted_out,
        "inactive": inactive,
    }
    teams = await teams_for(session, user)
    if team and not any(str(t.id) == team for t in teams):
        params["team"] = team = ""  # a team that is gone, or not this lead's: no filter
    filters, error = parse_filters(params)
    now = request.app.state.ctx.clock()
    rows, next_cursor = await supporter_page(
        session, user.principal, filters, now=now, limit=PAGE_SIZE, cursor=cursor or None
    )
    ids = [s.id for s in rows if s.id is not None]
    addresses = await addresses_by_supporter(session, ids)
    tags = await tags_by_supporter(session, ids)
    member_of = await teams_by_supporter(session, ids)
    entries: list[dict[str, Any]] = [
        {
            "supporter": s,
            "channels": sorted({a.channel for a in addresses[s.id or 0]}),
            "teams": [t.name for t in member_of[s.id or 0]],
            "tags": tags[s.id or 0],
        }
        for s in rows
    ]
    query = {k: v for k, v in params.items() if v}
    return render(
        request,
        "supporters.html",
        {
            "entries": entries,
            "params": params,
            "teams": teams,
            "channels": ALL_CHANNELS,
            "error": error,
            "changed": changed,
            "this_page": "/console/supporters" + (f"?{urlencode(query)}" if query else ""),
            "next_page": (
                "/console/supporters?" + urlencode({**query, "cursor": next_cursor})
                if next_cursor
                else None
            ),
        },
        status_code=400 if error else 200,
    )


def _back_to(target: str) -> str:
    """Only back to the supporter list (never another site)."""
    if target.startswith("/console/supporters") and "//" not in target and "\\" not in target:
        return target
    return "/console/supporters"


@router.post("/supporters/tags", include_in_schema=False)
async def bulk_tag(
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    tag: Annotated[str, Form(max_length=200)] = "",
    action: Annotated[str, Form()] = "add",
    supporter_ids: Annotated[list[SupporterId] | None, Form(max_length=MAX_BULK)] = None,
    back: Annotated[str, Form(max_length=2000)] = "/console/supporters",
) -> Response:
    """Add or remove one tag for the ticked supporters, all in one transaction."""
    if action not in ("add", "remove"):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "unknown action")
    target = _back_to(back)
    if not supporter_ids:
        return _redirect(target, changed=0)
    try:
        changed = await tag_supporters(
            session,
            user.principal,
            supporter_ids,
            tag,
            add=action == "add",
            now=request.app.state.ctx.clock(),
        )
    except FieldError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, exc.message) from exc
    return _redirect(target, changed=changed)


def _redirect(target: str, **extra: int) -> RedirectResponse:
    joiner = "&" if "?" in target else "?"
    return RedirectResponse(
        target + joiner + urlencode(extra), status_code=status.HTTP_303_SEE_OTHER
    )
