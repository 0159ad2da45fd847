"""Onboarding's last question: the next intake calls (events of kind "intake"), numbered,
offered once the recruit has given a name (and picked a team). A number answers it as an
RSVP yes to that call, in the onboarding flow; anything else ends the offer and is an
ordinary message. RALLYPOINT_ONBOARDING_INTAKE_OFFERS calls are offered (0: none)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from routing.context import AppContext
from routing.organizing.event_rsvp import record_rsvp
from routing.organizing.event_text import local_start
from storage.models import Event, EventOccurrence, Message, OnboardingState, Supporter

INTAKE_KIND = "intake"


async def intake_offer(
    session: AsyncSession,
    ctx: AppContext,
    supporter: Supporter,
    state: OnboardingState,
    now: datetime,
) -> str | None:
    """The question offering the next intake calls (remembered in `state`), or None when
    there are none: then onboarding is simply done."""
    limit = ctx.settings.onboarding_intake_offers
    if limit <= 0:
        return None
    rows = (
        await session.exec(
            select(EventOccurrence, Event)
            .join(Event, col(Event.id) == col(EventOccurrence.event_id))
            .where(
                col(Event.kind) == INTAKE_KIND,
                col(Event.cancelled_at).is_(None),
                col(EventOccurrence.starts_at) > now,
            )
            .order_by(col(EventOccurrence.starts_at), col(EventOccurrence.id))
            .limit(limit)
        )
    ).all()
    if not rows:
        return None
    state.offered_events = [occurrence.id for occurrence, _ in rows if occurrence.id]
    default = ctx.settings.default_timezone
    lines = ["Join an intake call?"]
    for number, (occurrence, event) in enumerate(rows, start=1):
        when = local_start(occurrence.starts_at, supporter.timezone, default)
        lines.append(f"{number}) {event.title}, {when}")
    lines.append("Reply with a number.")
    return "\n".join(lines)


async def answer_intake(
    session: AsyncSession,
    ctx: AppContext,
    supporter: Supporter,
    state: OnboardingState,
    message: Message,
    number: int | None,
) -> bool:
    """Take a number as an RSVP yes to the call it stood for; True when it was one."""
    offered = state.offered_events or []
    state.step = "done"
    session.add(state)
    if number is None or not 0 < number <= len(offered):
        return False
    occurrence = await session.get(EventOccurrence, offered[number - 1])
    event = await session.get(Event, occurrence.event_id) if occurrence else None
    if occurrence is None or event is None:
        return False
    await record_rsvp(
        session, ctx, event, supporter, 0, message=message, now=ctx.clock(), occurrence=occurrence
    )
    return True
