"""Polls: the question sent as an announcement, and replies matched to its options.

A reply answers the poll when it is the newest open question that reached the supporter
(routing/organizing/questions.py: polls and event invitations share the rule) and it is
an option's number (1..N) or an option's text (any case, punctuation ignored). The
answer is upserted (the last one wins) and the message stays in the conversation.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, exists, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from routing.webhooks.events import emit
from storage.models import Message, Poll, PollAnswer

log = logging.getLogger(__name__)


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
