"""Polls: the question sent as an announcement, and replies matched to its options.

A reply answers the newest open poll sent to the supporter in the last 7 days when it is
an option's number (1..N) or an option's text (any case, punctuation ignored). The
answer is upserted (the last one wins) and the message stays in the conversation.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, bindparam, exists, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from routing.context import AppContext
from routing.organizing.automation import Arrival, Awaiting, Inbound, supporter_ids
from routing.webhooks.events import emit
from storage.models import Message, Poll, PollAnswer

log = logging.getLogger(__name__)

POLL_WINDOW = timedelta(days=7)
# A poll is open to a supporter once its message has reached the provider: a reply
# before that (the poll is still queued, or scheduled for later) cannot be an answer.
REACHED = ("sent", "delivered", "read")


def render_poll(question: str, options: Sequence[str]) -> str:
    """The text supporters get: the question, numbered options, how to answer."""
    lines = [question.strip(), *(f"{i}) {option}" for i, option in enumerate(options, 1))]
    return "\n".join([*lines, "Reply with a number."])


def normalize(text: str) -> str:
    """Case-folded, punctuation and symbols dropped, whitespace collapsed."""
    kept = "".join(
        " " if unicodedata.category(ch)[0] in "PSZ" or ch.isspace() else ch
        for ch in unicodedata.normalize("NFKC", text).casefold()
    )
    return " ".join(kept.split())


def match_option(reply: str, options: Sequence[str]) -> int | None:
    """The 0-based option a reply picks (its number first, then its text), or None."""
    text = normalize(reply)
    if not text:
        return None
    if text.isdigit():
        number = int(text)
        if 1 <= number <= len(options):
            return number - 1
    for index, option in enumerate(options):
        if normalize(option) == text:
            return index
    return None


async def open_poll_for(session: AsyncSession, supporter_id: int, now: datetime) -> Poll | None:
    """The newest open poll that reached the supporter within the poll window."""
    query = (
        select(Poll)
        .join(Message, col(Message.announcement_id) == col(Poll.announcement_id))
        .where(
            Message.supporter_id == supporter_id,
            Message.kind == "poll",
            Message.direction == "outbound",
            col(Message.status).in_(REACHED),
            col(Message.created_at) >= now - POLL_WINDOW,
            col(Poll.closed).is_(False),
        )
        .order_by(col(Message.created_at).desc(), col(Message.id).desc())
        .limit(1)
    )
    return (await session.exec(query)).first()


def open_poll_of(announcement_id: int) -> ColumnElement[bool]:
    """The poll asked by this announcement is still open (for routing/outbound/cancel.py)."""
    return exists().where(col(Poll.announcement_id) == announcement_id, col(Poll.closed).is_(False))


async def close_polls_of(session: AsyncSession, announcement_id: int) -> None:
    """Close the poll asked by this announcement, as POST /polls/{id}/close does (no
    commit): a cancelled poll takes no more answers from those it already reached."""
    await session.execute(
        update(Poll)
        .where(col(Poll.announcement_id) == announcement_id, col(Poll.closed).is_(False))
        .values(closed=True)
    )


async def record_answer(
    session: AsyncSession,
    poll: Poll,
    supporter_id: int,
    option_index: int,
    *,
    message: Message,
    now: datetime,
) -> PollAnswer:
    assert poll.id is not None
    answer = (
        await session.exec(
            select(PollAnswer).where(
                PollAnswer.poll_id == poll.id, PollAnswer.supporter_id == supporter_id
            )
        )
    ).first()
    if answer is None:
        answer = PollAnswer(
            poll_id=poll.id, supporter_id=supporter_id, option_index=option_index, answered_at=now
        )
    answer.option_index = option_index
    answer.message_id = message.id
    answer.channel = message.channel
    answer.answered_at = now
    session.add(answer)
    await session.flush()
    await emit(
        session,
        "poll.answered",
        supporter_id=supporter_id,
        poll_id=poll.id,
        message_id=message.id,
        channel=message.channel,
        now=now,
    )
    return answer


def _awaiting() -> Awaiting:
    """Supporters sent a poll within the window (whether it reached them or not: a superset
    of `open_poll_for`, one cheap statement for a whole batch)."""
    sent = col(Message.created_at)
    statement = select(col(Message.supporter_id)).where(
        col(Message.supporter_id).in_(supporter_ids()),
        Message.kind == "poll",
        Message.direction == "outbound",
        sent >= bindparam("poll_since", type_=Message.__table__.c.created_at.type),  # type: ignore[attr-defined]
    )
    return Awaiting(statement, lambda now: {"poll_since": now - POLL_WINDOW})


class PollAnswers:
    """A reply that picks an option of the supporter's open poll."""

    def __init__(self) -> None:
        self.awaiting: Awaiting | None = _awaiting()

    def might_react(self, arrival: Arrival) -> bool:
        return False  # only someone sent a poll can answer one: `awaiting` finds them

    async def react(self, session: AsyncSession, ctx: AppContext, inbound: Inbound) -> bool:
        """Record the reply as an answer to the supporter's open poll; False if it is none."""
        supporter, message = inbound.supporter, inbound.message
        assert supporter.id is not None
        now = ctx.clock()
        poll = await open_poll_for(session, supporter.id, now)
        if poll is None:
            return False
        option = match_option(inbound.event.body, poll.options or [])
        if option is None:
            return False
        await record_answer(session, poll, supporter.id, option, message=message, now=now)
        log.info("poll %s answered: supporter=%s option=%s", poll.id, supporter.id, option + 1)
        return True


POLL_ANSWERS = PollAnswers()
