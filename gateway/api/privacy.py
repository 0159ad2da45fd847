"""/api/v1/supporters/{id}/erase and /export: a supporter's right to be forgotten and to
see everything held about them. Both are written to the audit trail."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response, status
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gateway.api.ids import IdPath
from gateway.api.scope import SessionDep, visible_supporter
from gateway.audit import record, request_ip
from gateway.auth import AnyRole, Context, Principal, Staff
from routing.people.erasure import erase_supporter
from storage.db import truncate_wal
from storage.field_values import values_by_supporter
from storage.models import (
    ConsentEvent,
    Conversation,
    EventRsvp,
    Message,
    MessageAttempt,
    OnboardingState,
    PollAnswer,
    Supporter,
)
from storage.queries import addresses_by_supporter, tags_by_supporter, teams_by_supporter

router = APIRouter(prefix="/supporters", tags=["privacy"])


@router.post("/{supporter_id}/erase", status_code=status.HTTP_204_NO_CONTENT)
async def erase(
    supporter_id: IdPath, request: Request, principal: Staff, ctx: Context, session: SessionDep
) -> Response:
    """Delete the supporter and everything about them, from the database files too; an
    address that had opted out stays on the do-not-contact list as a keyed hash."""
    await erase_completely(supporter_id, request, principal, ctx, session)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def erase_completely(
    supporter_id: int, request: Request, principal: Principal, ctx: Any, session: AsyncSession
) -> None:
    """The erasure both `POST .../erase` and `DELETE /supporters/{id}` run: every row,
    the do-not-contact hash of an opted-out address, the audit entry, the WAL emptied."""
    supporter = await visible_supporter(session, principal, supporter_id)
    now = ctx.clock()
    await erase_supporter(session, supporter, erasure_key=ctx.settings.erasure_key, now=now)
    record(
        session,
        "supporter_erased",
        at=now,
        actor=principal.label,
        target=f"supporter:{supporter_id}",
        ip=request_ip(request),
    )
    await session.commit()
    await truncate_wal(ctx.engine)


@router.get("/{supporter_id}/export")
async def export(
    supporter_id: IdPath, request: Request, principal: AnyRole, ctx: Context, session: SessionDep
) -> dict[str, Any]:
    """Everything held about the supporter, as JSON (a team lead: their team's only)."""
    supporter = await visible_supporter(session, principal, supporter_id)
    data = await supporter_export(session, supporter)
    record(
        session,
        "supporter_exported",
        at=ctx.clock(),
        actor=principal.label,
        target=f"supporter:{supporter_id}",
        ip=request_ip(request),
    )
    await session.commit()
    return data


async def supporter_export(session: AsyncSession, supporter: Supporter) -> dict[str, Any]:
    sid = supporter.id
    assert sid is not None
    profile = supporter.model_dump(mode="json")
    addresses = (await addresses_by_supporter(session, [sid]))[sid]
    teams = (await teams_by_supporter(session, [sid]))[sid]
    consent = (
        await session.exec(
            select(ConsentEvent)
            .where(col(ConsentEvent.supporter_id) == sid)
            .order_by(col(ConsentEvent.id))
        )
    ).all()
    answers = (
        await session.exec(
            select(PollAnswer)
            .where(col(PollAnswer.supporter_id) == sid)
            .order_by(col(PollAnswer.id))
        )
    ).all()
    rsvps = (
        await session.exec(
            select(EventRsvp).where(col(EventRsvp.supporter_id) == sid).order_by(col(EventRsvp.id))
        )
    ).all()
    onboarding = await session.get(OnboardingState, sid)
    conversation = (
        await session.exec(select(Conversation).where(col(Conversation.supporter_id) == sid))
    ).first()
    return {
        "supporter": profile,
        "addresses": [a.model_dump(mode="json", exclude={"supporter_id"}) for a in addresses],
        "tags": (await tags_by_supporter(session, [sid]))[sid],
        "fields": (await values_by_supporter(session, [sid]))[sid],
        "teams": [{"id": t.id, "name": t.name} for t in teams],
        "consent_history": [e.model_dump(mode="json", exclude={"supporter_id"}) for e in consent],
        "poll_answers": [a.model_dump(mode="json", exclude={"supporter_id"}) for a in answers],
        "event_rsvps": [r.model_dump(mode="json", exclude={"supporter_id"}) for r in rsvps],
        "onboarding": onboarding.model_dump(mode="json") if onboarding else None,
        "conversation": conversation.model_dump(mode="json") if conversation else None,
        "messages": await _messages(session, sid),
    }


async def _messages(session: AsyncSession, supporter_id: int) -> list[dict[str, Any]]:
    messages = (
        await session.exec(
            select(Message)
            .where(col(Message.supporter_id) == supporter_id)
            .order_by(col(Message.id))
        )
    ).all()
    ids = [m.id for m in messages]
    attempts: dict[int, list[dict[str, Any]]] = {}
    for attempt in (
        await session.exec(
            select(MessageAttempt)
            .where(col(MessageAttempt.message_id).in_(ids))
            .order_by(col(MessageAttempt.id))
        )
    ).all():
        attempts.setdefault(attempt.message_id, []).append(
            attempt.model_dump(mode="json", exclude={"message_id"})
        )
    return [
        {
            **m.model_dump(mode="json", exclude={"supporter_id"}),
            "attempts": attempts.get(m.id or 0, []),
        }
        for m in messages
    ]
