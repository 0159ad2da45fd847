"""Consent: opting a supporter out of everything (or back in), with an audit trail."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from routing.webhooks.events import emit
from storage.models import ConsentEvent, Supporter

log = logging.getLogger(__name__)


async def record_consent(
    session: AsyncSession,
    supporter: Supporter,
    action: str,
    *,
    now: datetime,
    channel: str | None = None,
    message_id: int | None = None,
    reason: str | None = None,
) -> bool:
    """Set `opted_out` for `action` ("opt_out" / "opt_in"); True when it changed."""
    assert action in ("opt_out", "opt_in")
    assert supporter.id is not None
    opted_out = action == "opt_out"
    changed = supporter.opted_out != opted_out
    supporter.opted_out = opted_out
    supporter.opted_out_at = now if opted_out else None
    supporter.updated_at = now
    session.add(supporter)
    session.add(
        ConsentEvent(
            supporter_id=supporter.id,
            action=action,
            channel=channel,
            message_id=message_id,
            reason=reason,
            created_at=now,
        )
    )
    if changed:
        event = "supporter.opted_out" if opted_out else "supporter.opted_in"
        await emit(session, event, supporter_id=supporter.id, channel=channel, now=now)
    log.info(
        "consent %s: supporter=%s channel=%s changed=%s", action, supporter.id, channel, changed
    )
    return changed
