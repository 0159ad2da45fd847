"""The audit trail: one row per sign-in, failed sign-in, sign-out and user change."""

from __future__ import annotations

from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import AuditEvent


def record(
    session: AsyncSession,
    action: str,
    *,
    at: datetime,
    actor: str | None = None,
    target: str | None = None,
    ip: str | None = None,
) -> None:
    """Add an audit row (no commit: it lands with the change it describes)."""
    session.add(AuditEvent(at=at, actor=actor, action=action, target=target, ip=ip))
