"""/api/v1/audit: the audit trail, newest first, for admins (gateway/audit.py lists the
actions). Read-only: no route changes or deletes an entry."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlmodel import col, select

from gateway.api.pagination import (
    DEFAULT_LIMIT,
    Cursor,
    Limit,
    Page,
    decode_cursor,
    encode_cursor,
    split_page,
)
from gateway.api.scope import SessionDep
from gateway.auth import Admin
from storage.models import AuditEvent

router = APIRouter(prefix="/audit", tags=["audit"])


class AuditItem(BaseModel):
    id: int
    at: datetime
    actor: str | None
    action: str
    target: str | None
    ip: str | None


@router.get("", response_model=Page[AuditItem])
async def audit_events(
    _principal: Admin,
    session: SessionDep,
    actor: str | None = Query(None, max_length=200, description='e.g. "user:3", "key:1", "cli"'),
    action: str | None = Query(None, max_length=32, description='e.g. "sign_in_failed"'),
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[AuditItem]:
    """Audit entries, newest first, optionally of one actor and/or one action."""
    query = select(AuditEvent)
    if actor:
        query = query.where(col(AuditEvent.actor) == actor)
    if action:
        query = query.where(col(AuditEvent.action) == action)
    before = decode_cursor(cursor, (int,))
    if before is not None:
        query = query.where(col(AuditEvent.id) < before[0])
    rows = list(
        (await session.exec(query.order_by(col(AuditEvent.id).desc()).limit(limit + 1))).all()
    )
    page, more = split_page(rows, limit)
    return Page(
        items=[
            AuditItem(
                id=r.id or 0, at=r.at, actor=r.actor, action=r.action, target=r.target, ip=r.ip
            )
            for r in page
        ],
        next_cursor=encode_cursor(page[-1].id) if more else None,
    )
