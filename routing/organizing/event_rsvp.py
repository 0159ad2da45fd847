"""An RSVP: a supporter's answer to an event invitation, recorded for the event's next
occurrence (the last answer wins), confirmed in a short reply, told to webhooks."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from routing.context import AppContext
from routing.organizing.event_text import ANSWERS, closed_text, confirmation_text
from routing.organizing.events import answer_count, next_occurrence, rsvp_of
from routing.outbound.queue import queue_message
from routing.webhooks.events import emit
from storage.models import Event, EventOccurrence, EventRsvp, Message, Supporter

log = logging.getLogger(__name__)


async def record_rsvp(
    session: AsyncSession,
    ctx: AppContext,
    event: Event,
    supporter: Supporter,
    option_index: int,
    *,
    message: Message,
    now: datetime,
    occurrence: EventOccurrence | None = None,
) -> EventRsvp | None:
    """Record the answer (0 yes, 1 no, 2 maybe) for `occurrence` (default: the next not
    started) and queue the confirmation; an event that was cancelled or has started is
    answered so and nothing changes (None)."""
    assert event.id is not None and supporter.id is not None
    if event.cancelled_at is not None:
        occurrence = None
    elif occurrence is None:
        occurrence = await next_occurrence(session, event.id, now)
    elif occurrence.starts_at <= now:
        occurrence = None
    if occurrence is None or occurrence.id is None:
        await _reply(
            session, ctx, supporter, message, closed_text(event.title, bool(event.cancelled_at))
        )
        log.info("rsvp to closed event %s: supporter=%s, nothing changed", event.id, supporter.id)
        return None
    answer = ANSWERS[option_index]
    if answer == "yes" and event.capacity is not None:
        taken = await answer_count(session, occurrence.id, "yes", besides=supporter.id)
        if taken >= event.capacity:
            answer = "waitlist"
    rsvp = await rsvp_of(session, occurrence.id, supporter.id)
    if rsvp is None:
        rsvp = EventRsvp(
            event_id=event.id,
            occurrence_id=occurrence.id,
            supporter_id=supporter.id,
            invited_at=now,
        )
    rsvp.answer = answer
    rsvp.answered_at = now
    rsvp.message_id = message.id
    rsvp.channel = message.channel
    session.add(rsvp)
    await session.flush()
    await emit(
        session,
        "event.rsvp",
        supporter_id=supporter.id,
        message_id=message.id,
        rsvp_id=rsvp.id,
        channel=message.channel,
        now=now,
    )
    await _reply(session, ctx, supporter, message, confirmation_text(answer, event.title))
    log.info("event %s rsvp: supporter=%s answer=%s", event.id, supporter.id, answer)
    return rsvp


async def _reply(
    session: AsyncSession, ctx: AppContext, supporter: Supporter, message: Message, text: str
) -> None:
    await queue_message(session, ctx, supporter, text, kind="auto_reply", channel=message.channel)
