"""A supporter's profile (GET /console/supporters/{id}): addresses by channel, preferred
channels, consent state and history, teams, tags, last inbound, one-on-ones, poll answers
and a "Message" link to their conversation; "Add to team" and opening a conversation.
A team lead sees only their team's supporters (404 for others, as the REST API)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request, Response, status
from fastapi.responses import RedirectResponse
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gateway.api.ids import IdPath
from gateway.api.scope import SessionDep, lead_team, visible_supporter
from gateway.api.supporter_events import events_of
from gateway.auth import Principal
from gateway.console.security import CurrentUser
from gateway.console.supporters import teams_for
from gateway.console.templating import render
from routing.people.supporters import FieldError, OutsideTeam, update_supporter
from storage.field_values import values_by_supporter
from storage.models import ConsentEvent, Conversation, Poll, PollAnswer, Supporter
from storage.queries import (
    addresses_by_supporter,
    conversation_for,
    message_stats,
    tags_by_supporter,
    teams_by_supporter,
)

router = APIRouter()
HISTORY_ROWS = 50


async def profile_context(
    session: AsyncSession, principal: Principal, supporter: Supporter
) -> dict[str, Any]:
    """Everything the profile shows about `supporter` (visibility already checked) that
    `principal` may see."""
    assert supporter.id is not None
    sid = supporter.id
    consent = await session.exec(
        select(ConsentEvent)
        .where(ConsentEvent.supporter_id == sid)
        .order_by(col(ConsentEvent.created_at).desc(), col(ConsentEvent.id).desc())
        .limit(HISTORY_ROWS)
    )
    answers = await session.exec(
        select(PollAnswer, Poll)
        .join(Poll, col(Poll.id) == col(PollAnswer.poll_id))
        .where(PollAnswer.supporter_id == sid)
        .order_by(col(PollAnswer.answered_at).desc(), col(PollAnswer.id).desc())
        .limit(HISTORY_ROWS)
    )
    conversation = (
        await session.exec(select(Conversation.id).where(Conversation.supporter_id == sid))
    ).first()
    return {
        "supporter": supporter,
        "addresses": (await addresses_by_supporter(session, [sid]))[sid],
        "tags": (await tags_by_supporter(session, [sid]))[sid],
        "custom": (await values_by_supporter(session, [sid]))[sid],
        "member_of": (await teams_by_supporter(session, [sid]))[sid],
        "stats": (await message_stats(session, [sid]))[sid],
        "consent": list(consent.all()),
        "answers": [
            {
                "question": poll.question,
                "answer": poll.options[a.option_index]
                if 0 <= a.option_index < len(poll.options)
                else f"option {a.option_index + 1}",
                "at": a.answered_at,
                "channel": a.channel,
            }
            for a, poll in answers.all()
        ],
        "conversation_id": conversation,
        "events": await events_of(session, principal, sid),
    }


async def render_profile(
    request: Request,
    user: CurrentUser,
    session: AsyncSession,
    supporter: Supporter,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    context = await profile_context(session, user.principal, supporter)
    joined = {t.id for t in context["member_of"]}
    context["addable_teams"] = [t for t in await teams_for(session, user) if t.id not in joined]
    context["error"] = error
    return render(request, "supporter.html", context, status_code=status_code)


@router.get("/supporters/{supporter_id:int}", include_in_schema=False)
async def profile(
    request: Request, supporter_id: IdPath, user: CurrentUser, session: SessionDep
) -> Response:
    supporter = await visible_supporter(session, user.principal, supporter_id)
    return await render_profile(request, user, session, supporter)


@router.post("/supporters/{supporter_id:int}/teams", include_in_schema=False)
async def add_to_team(
    request: Request,
    supporter_id: IdPath,
    user: CurrentUser,
    session: SessionDep,
    team: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    """Add the supporter to one more team, as PATCH /api/v1/supporters/{id} with the
    team list plus this one; a team lead cannot add anyone to another team (403)."""
    supporter = await visible_supporter(session, user.principal, supporter_id)
    if not team.strip():
        return await render_profile(
            request, user, session, supporter, error="Choose a team.", status_code=400
        )
    current = [t.id for t in (await teams_by_supporter(session, [supporter_id]))[supporter_id]]
    try:
        await update_supporter(
            session,
            supporter,
            {"teams": [*current, team.strip()]},
            now=request.app.state.ctx.clock(),
            default_region=request.app.state.ctx.settings.default_region,
            lead_team_id=lead_team(user.principal),
            erasure_key=request.app.state.ctx.settings.erasure_key,
        )
    except FieldError as exc:
        await session.rollback()
        await session.refresh(supporter)
        return await render_profile(
            request, user, session, supporter, error=exc.message, status_code=422
        )
    except OutsideTeam as exc:
        await session.rollback()
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from exc
    await session.commit()
    return RedirectResponse(
        f"/console/supporters/{supporter_id}", status_code=status.HTTP_303_SEE_OTHER
    )


@router.post("/supporters/{supporter_id:int}/conversation", include_in_schema=False)
async def open_conversation(
    request: Request, supporter_id: IdPath, user: CurrentUser, session: SessionDep
) -> Response:
    """The "Message" button of a supporter who has no conversation yet: open it (the same
    conversation_for a first message uses) and go to its thread."""
    await visible_supporter(session, user.principal, supporter_id)
    convo = await conversation_for(session, supporter_id, request.app.state.ctx.clock())
    await session.commit()
    return RedirectResponse(
        f"/console/conversations/{convo.id}", status_code=status.HTTP_303_SEE_OTHER
    )
