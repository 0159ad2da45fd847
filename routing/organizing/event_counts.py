"""RSVP counts of an occurrence: by answer, attended, and by the channel answered on."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import case, func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import EventRsvp

COUNT_KEYS = ("yes", "no", "maybe", "waitlist", "no_reply", "attended")
ATTENDED = case((col(EventRsvp.attended).is_(True), 1), else_=0)


# {answer (None: no reply yet): (RSVPs, of them attended)} of one occurrence.
Tally = dict[str | None, tuple[int, int]]


async def answer_tallies(session: AsyncSession, occurrence_ids: Iterable[int]) -> dict[int, Tally]:
    """The tally of each occurrence, in one GROUP BY (read through uq_event_rsvp)."""
    wanted = sorted(set(occurrence_ids))
    if not wanted:
        return {}
    rows = await session.exec(
        select(
            col(EventRsvp.occurrence_id), col(EventRsvp.answer), func.count(), func.sum(ATTENDED)
        )
        .where(col(EventRsvp.occurrence_id).in_(wanted))
        .group_by(col(EventRsvp.occurrence_id), col(EventRsvp.answer))
    )
    out: dict[int, Tally] = {}
    for occurrence_id, answer, number, came in rows.all():
        out.setdefault(occurrence_id, {})[answer] = (int(number), int(came or 0))
    return out


def occurrence_counts(tally: Tally, invited: int) -> dict[str, int]:
    """{yes, no, maybe, waitlist, no_reply, attended}; no_reply is the event's invitees
    who have not answered for this occurrence."""
    counts = dict.fromkeys(COUNT_KEYS, 0)
    answered = 0
    for answer, (number, came) in tally.items():
        if answer in counts:
            counts[answer] += number
            answered += number
        counts["attended"] += came
    counts["no_reply"] = max(0, invited - answered)
    return counts


async def counts_by_channel(session: AsyncSession, occurrence_id: int) -> dict[str, dict[str, int]]:
    """{channel: {answer: n}} of the answers (the channel each was given on)."""
    rows = await session.exec(
        select(col(EventRsvp.channel), col(EventRsvp.answer), func.count())
        .where(col(EventRsvp.occurrence_id) == occurrence_id, col(EventRsvp.answer).is_not(None))
        .group_by(col(EventRsvp.channel), col(EventRsvp.answer))
    )
    out: dict[str, dict[str, int]] = {}
    for channel, answer, number in rows.all():
        out.setdefault(channel or "api", {})[str(answer)] = int(number)
    return out
