"""Cancelling a check-in run: its prompt is an announcement (routing/outbound/cancel.py), and
its nudges, one-on-ones written in the same run (routing/organizing/checkins.py `run_sender`),
stop with it.

In the cancel's transaction, after `cancel_announcement`, and as it treats the prompt's
messages: a nudge not yet handed to a provider becomes `skipped` with error `cancelled`
and leaves the outbox; one a dispatcher has leased is left to finish (it may be at the
provider already), and a retry or fallback of it is skipped when claimed, as are rows
claimed but still waiting (routing/dispatch/batch.py `cancelled_with`). A run whose
prompts have all gone out is still cancelled while a nudge is queued (`queued_nudges`).
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import ColumnElement, exists, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from routing.organizing.checkins import run_sender
from routing.outbound.cancel import CANCELLED, MESSAGES, stop_queued

log = logging.getLogger(__name__)


def _nudges_of(announcement_id: int) -> tuple[ColumnElement[bool], ...]:
    return (MESSAGES.c.sent_by == run_sender(announcement_id), MESSAGES.c.kind == "nudge")


def queued_nudges(announcement_id: int) -> ColumnElement[bool]:
    """The run has nudges not yet sent (for routing/outbound/cancel.py): its cancel stops them even
    when every prompt has gone out."""
    return exists().where(*_nudges_of(announcement_id), MESSAGES.c.status == "queued")


async def skip_run_nudges(session: AsyncSession, announcement_id: int, now: datetime) -> int:
    """Stop the run's queued nudges (no commit); how many were stopped now."""
    count = await stop_queued(session, _nudges_of(announcement_id), now)
    if not count:
        return 0
    log.info("check-in run %s cancelled; %s nudges stopped", announcement_id, count)
    return count


async def skipped_nudges(session: AsyncSession, announcement_id: int) -> int:
    """The run's nudges that a cancel stopped."""
    found = await session.execute(
        select(func.count())
        .select_from(MESSAGES)
        .where(
            *_nudges_of(announcement_id),
            MESSAGES.c.status == "skipped",
            MESSAGES.c.error == CANCELLED,
        )
    )
    return int(found.scalar_one())
