"""A supporter's consent history: every opt-out and opt-in, when, how and on which channel."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel
from sqlmodel import col, select

from gateway.api.ids import IdPath
from gateway.api.scope import SessionDep, visible_supporter
from gateway.auth import AnyRole
from storage.models import ConsentEvent

router = APIRouter(tags=["consent"])


class ConsentEventPublic(BaseModel):
    id: int
    action: str
    channel: str | None
    message_id: int | None
    reason: str | None
    created_at: datetime


class ConsentHistory(BaseModel):
    supporter_id: int
    opted_out: bool
    opted_out_at: datetime | None
    items: list[ConsentEventPublic]


@router.get("/supporters/{supporter_id}/consent")
async def consent_history(
    supporter_id: IdPath, principal: AnyRole, session: SessionDep
) -> ConsentHistory:
    """Oldest first. A team lead sees only the supporters of their team (else 404)."""
    supporter = await visible_supporter(session, principal, supporter_id)
    rows = (
        await session.exec(
            select(ConsentEvent)
            .where(ConsentEvent.supporter_id == supporter_id)
            .order_by(col(ConsentEvent.id))
        )
    ).all()
    return ConsentHistory(
        supporter_id=supporter_id,
        opted_out=supporter.opted_out,
        opted_out_at=supporter.opted_out_at,
        items=[ConsentEventPublic.model_validate(row, from_attributes=True) for row in rows],
    )
