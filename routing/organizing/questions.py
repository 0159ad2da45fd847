"""The one rule for numbered replies: a reply of an option's number (or its word) answers
the newest open question that reached the supporter in the last 7 days, a poll or an
event invitation alike.

"Open": a poll not closed; an invitation always (an answer to a cancelled or started event
is told so, and nothing changes). Consent keywords run first (routing/organizing/
reactions.py): YES from an opted-out supporter opts them in; from anyone else it answers.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import bindparam, exists, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

import routing.organizing.event_invites  # noqa: F401  (invitations' fan-out hook)
from routing.context import AppContext
from routing.organizing.automation import Arrival, Awaiting, Inbound, supporter_ids
from routing.organizing.event_rsvp import record_rsvp
from routing.organizing.event_text import OPTIONS
from routing.organizing.events import event_of_announcement
from routing.organizing.polls import match_option, record_answer
from storage.models import Message, Poll

log = logging.getLogger(__name__)

QUESTION_WINDOW = timedelta(days=7)
# A question is open to a supporter once its message has reached the provider: a reply
# before that (still queued, or scheduled for later) cannot be an answer.
REACHED = ("sent", "delivered", "read")
# Message kinds that ask a numbered question (their announcement holds the question).
QUESTION_KINDS = ("poll", "event")


async def newest_question(
    session: AsyncSession, supporter_id: int, now: datetime
) -> Message | None:
    """The newest question message that reached the supporter within the window, closed
    polls left out."""
    closed_poll = exists().where(
        col(Poll.announcement_id) == col(Message.announcement_id), col(Poll.closed).is_(True)
    )
    query = (
        select(Message)
        .where(
            Message.supporter_id == supporter_id,
            col(Message.kind).in_(QUESTION_KINDS),
            Message.direction == "outbound",
            col(Message.announcement_id).is_not(None),
            col(Message.status).in_(REACHED),
            col(Message.created_at) >= now - QUESTION_WINDOW,
            or_(col(Message.kind) != "poll", ~closed_poll),
        )
        .order_by(col(Message.created_at).desc(), col(Message.id).desc())
        .limit(1)
    )
    return (await session.exec(query)).first()


def _awaiting() -> Awaiting:
    """Supporters sent a question within the window (reached or not: a superset of
    `newest_question`, one cheap statement for a whole batch)."""
    sent = col(Message.created_at)
    statement = select(col(Message.supporter_id)).where(
        col(Message.supporter_id).in_(supporter_ids()),
        col(Message.kind).in_(QUESTION_KINDS),
        Message.direction == "outbound",
        sent >= bindparam("question_since", type_=Message.__table__.c.created_at.type),  # type: ignore[attr-defined]
    )
    return Awaiting(statement, lambda now: {"question_since": now - QUESTION_WINDOW})


class QuestionAnswers:
    """A reply that picks an option of the supporter's newest open question."""

    def __init__(self) -> None:
        self.awaiting: Awaiting | None = _awaiting()

    def might_react(self, arrival: Arrival) -> bool:
        return False  # only someone asked can answer: `awaiting` finds them

    async def react(self, session: AsyncSession, ctx: AppContext, inbound: Inbound) -> bool:
        """Record the reply as the answer; False if it answers nothing."""
        supporter, message = inbound.supporter, inbound.message
        assert supporter.id is not None
        now = ctx.clock()
        question = await newest_question(session, supporter.id, now)
        if question is None or question.announcement_id is None:
            return False
        if question.kind == "poll":
            poll = (
                await session.exec(
                    select(Poll).where(col(Poll.announcement_id) == question.announcement_id)
                )
            ).first()
            if poll is None:
                return False
            option = match_option(inbound.event.body, poll.options or [])
            if option is None:
                return False
            await record_answer(session, poll, supporter.id, option, message=message, now=now)
            log.info("poll %s answered: supporter=%s option=%s", poll.id, supporter.id, option + 1)
            return True
        event = await event_of_announcement(session, question.announcement_id)
        if event is None:
            return False
        option = match_option(inbound.event.body, OPTIONS)
        if option is None:
            return False
        await record_rsvp(session, ctx, event, supporter, option, message=message, now=now)
        return True


QUESTION_ANSWERS = QuestionAnswers()
