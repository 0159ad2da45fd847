"""Creating an event: its row and occurrences, and (given an audience) its invitation,
fanned out like an announcement of kind "event" (routing/organizing/event_invites.py)."""

from __future__ import annotations

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gateway.api.announcement_create import create_announcement, request_hash
from gateway.api.event_schemas import EventCreate
from gateway.api.scope import lead_team
from gateway.auth import Principal
from gateway.context import GatewayContext
from routing.organizing.event_changes import add_occurrences
from routing.organizing.event_invites import INVITATION_KIND
from routing.organizing.event_text import invitation_text, local_start
from routing.organizing.events import facts_of
from storage.models import Announcement, Event


def new_event(ctx: GatewayContext, principal: Principal, payload: EventCreate) -> Event:
    now = ctx.clock()
    return Event(
        title=payload.title,
        kind=payload.kind,
        starts_at=payload.starts_at,
        duration_minutes=payload.duration_minutes,
        location_url=payload.location_url,
        description=payload.description,
        capacity=payload.capacity,
        audience={},
        recurrence=payload.recurrence,
        team_scope_id=lead_team(principal),
        created_by_key_id=principal.key_id,
        created_at=now,
        updated_at=now,
    )


async def create_event(
    ctx: GatewayContext, principal: Principal, payload: EventCreate, key: str | None
) -> tuple[Event, bool]:
    """Create (or replay, by `key`) the event and invite its audience; True when created."""
    event = new_event(ctx, principal, payload)
    if payload.audience is None:
        async with ctx.sessions() as session:
            session.add(event)
            await session.flush()
            await add_occurrences(session, event, ctx.clock())
            await session.commit()
            await session.refresh(event)
        return event, True

    async def add_event(session: AsyncSession, announcement: Announcement) -> None:
        event.announcement_id = announcement.id
        event.audience = announcement.audience
        event.team_scope_id = announcement.team_scope_id
        session.add(event)
        await session.flush()
        await add_occurrences(session, event, ctx.clock())

    # The announcement's own body is the invitation in the org's timezone (what reports
    # and previews show); each supporter's message is worded in theirs.
    body = invitation_text(
        facts_of(event), local_start(event.starts_at, None, ctx.settings.default_timezone)
    )
    announcement, created = await create_announcement(
        ctx,
        principal,
        kind=INVITATION_KIND,
        body=body,
        subject=payload.title,
        audience_in=payload.audience,
        send_at=None,
        template=None,
        key=key,
        digest=request_hash("event", payload),
        on_create=add_event,
    )
    async with ctx.sessions() as session:
        query = select(Event).where(col(Event.announcement_id) == announcement.id)
        found = (await session.exec(query)).first()
    assert found is not None
    return found, created
