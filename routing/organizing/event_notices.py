"""Messages about an event to some of its invitees (by answer, by attendance): updates,
cancellations, reminders and follow-ups, each worded in the supporter's own timezone."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from routing.context import AppContext
from routing.outbound.queue import PRIORITY_REPLY, queue_message
from storage.models import EventOccurrence, EventRsvp, Supporter

# Who a follow-up goes to (POST /events/{id}/follow-up `to`).
FOLLOW_UP_GROUPS = ("no_show", "attended", "no_reply")
# Supporters read per query when queueing a notice.
CHUNK = 500

TextFor = Callable[[str | None], str]  # the supporter's timezone → the text


def answered(*answers: str) -> ColumnElement[bool]:
    return col(EventRsvp.answer).in_(answers)


def follow_up_group(group: str) -> ColumnElement[bool]:
    """The RSVPs a follow-up `to` selects: said yes and did not come, came, never answered."""
    if group == "no_show":
        return (col(EventRsvp.answer) == "yes") & col(EventRsvp.attended).is_(False)
    if group == "attended":
        return col(EventRsvp.attended).is_(True)
    return col(EventRsvp.answer).is_(None) & col(EventRsvp.attended).is_(False)


async def recipients(
    session: AsyncSession,
    event_id: int,
    which: ColumnElement[bool],
    *,
    occurrence_ids: Sequence[int] | None = None,
    upcoming_after: datetime | None = None,
) -> list[int]:
    """Distinct supporter ids among the event's RSVPs matching `which`, in id order:
    of the given occurrences, or of those starting after `upcoming_after`, or of all."""
    query = (
        select(col(EventRsvp.supporter_id))
        .where(col(EventRsvp.event_id) == event_id, which)
        .distinct()
        .order_by(col(EventRsvp.supporter_id))
    )
    if occurrence_ids is not None:
        query = query.where(col(EventRsvp.occurrence_id).in_(occurrence_ids))
    if upcoming_after is not None:
        query = query.join(
            EventOccurrence, col(EventOccurrence.id) == col(EventRsvp.occurrence_id)
        ).where(col(EventOccurrence.starts_at) > upcoming_after)
    return [int(i) for i in (await session.exec(query)).all()]


async def send_notice(
    session: AsyncSession,
    ctx: AppContext,
    supporter_ids: Sequence[int],
    text_for: TextFor,
    *,
    kind: str,
    subject: str | None = None,
    attachments: list[dict[str, Any]] | None = None,
    priority: int = PRIORITY_REPLY,
) -> int:
    """Queue one message to each supporter (over their channel, consent honoured) in the
    caller's transaction; how many were queued (opted-out and unreachable ones are not)."""
    queued = 0
    texts: dict[str | None, str] = {}
    for start in range(0, len(supporter_ids), CHUNK):
        chunk = list(supporter_ids[start : start + CHUNK])
        rows = (await session.exec(select(Supporter).where(col(Supporter.id).in_(chunk)))).all()
        for supporter in sorted(rows, key=lambda s: s.id or 0):
            if supporter.timezone not in texts:
                texts[supporter.timezone] = text_for(supporter.timezone)
            message = await queue_message(
                session,
                ctx,
                supporter,
                texts[supporter.timezone],
                kind=kind,
                subject=subject,
                priority=priority,
            )
            if attachments:
                message.attachments = attachments
                session.add(message)
            queued += message.status == "queued"
    return queued
