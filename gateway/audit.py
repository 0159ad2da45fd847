"""The audit trail: who did what, append-only (nothing updates or deletes its rows; admins
read it at GET /api/v1/audit).

Actions (the `action` column; README "Audit log" lists them too):
- console: `sign_in`, `sign_in_failed`, `sign_in_refused` (locked out), `sign_out`
- users: `user_created`, `user_updated`
- API keys: `key_created`, `key_revoked`
- supporters: `supporter_exported`, `supporter_erased`, `supporters_imported`
- conversations: `conversation_read` (a console page showed a conversation's messages:
  call `record_conversation_read`)

`actor` is "user:<id>", "key:<id>" or "cli"; `target` names what was acted on
("supporter:<id>", "key:<id>", "conversation:<id>", an email for sign-ins).
"""

from __future__ import annotations

from datetime import datetime

from fastapi import Request
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


def request_ip(request: Request) -> str | None:
    """The client address of `request`, as the audit trail keeps it."""
    return request.client.host if request.client else None


def record_conversation_read(
    session: AsyncSession,
    conversation_id: int,
    *,
    at: datetime,
    actor: str,
    request: Request | None = None,
) -> None:
    """A console page showed a conversation's messages (no commit: the caller's)."""
    record(
        session,
        "conversation_read",
        at=at,
        actor=actor,
        target=f"conversation:{conversation_id}",
        ip=request_ip(request) if request is not None else None,
    )
