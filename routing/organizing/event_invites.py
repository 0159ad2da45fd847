"""Event invitations ride the announcement fan-out (routing/outbound/fanout.py): each
batch's messages are worded in the supporter's own timezone, those going by email carry
the calendar file (text/calendar; method=REQUEST), and every invitee queued gets an RSVP
row for the event's first occurrence, all in the batch's transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Integer, insert, literal, select
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from channels.sms_segments import sms_segments
from routing.context import AppContext
from routing.organizing.event_text import invitation_text, local_start
from routing.organizing.events import (
    event_of_announcement,
    facts_of,
    first_occurrence,
    ics_attachment,
)
from routing.outbound.fanout_hooks import register_fanout_hook
from routing.outbound.fanout_rows import MESSAGE_COLUMNS, MESSAGES, FanoutPlan
from storage.bulk_insert import BulkWriter
from storage.models import EventRsvp, Message, Supporter

INVITATION_KIND = "event"
RSVPS = EventRsvp.__table__  # type: ignore[attr-defined]
_SUPPORTER = MESSAGE_COLUMNS.index("supporter_id")
_CHANNEL = MESSAGE_COLUMNS.index("channel")
_SEGMENTS = MESSAGE_COLUMNS.index("segments")
_BODY = MESSAGE_COLUMNS.index("body")
_ATTACHMENTS = MESSAGE_COLUMNS.index("attachments")


class EventInvites:
    async def rows(
        self,
        ctx: AppContext,
        session: AsyncSession,
        writer: BulkWriter,
        plan: FanoutPlan,
        rows: list[tuple[Any, ...]],
        now: datetime,
    ) -> list[tuple[Any, ...]]:
        event = await event_of_announcement(session, plan.announcement_id)
        if event is None or not rows:
            return rows
        ids = [row[_SUPPORTER] for row in rows]
        zones: dict[int, str | None] = {
            supporter_id: timezone
            for supporter_id, timezone in (
                await session.execute(
                    select(col(Supporter.id), col(Supporter.timezone)).where(
                        col(Supporter.id).in_(ids)
                    )
                )
            ).all()
        }
        facts = facts_of(event)
        default = ctx.settings.default_timezone
        attachments = writer.bind(
            MESSAGES, "attachments", [ics_attachment(event, ctx.settings, "REQUEST")]
        )
        bodies: dict[str | None, tuple[str, int]] = {}  # by timezone: text, SMS segments
        changed = []
        for row in rows:
            timezone = zones.get(row[_SUPPORTER])
            if timezone not in bodies:
                body = invitation_text(facts, local_start(event.starts_at, timezone, default))
                bodies[timezone] = (body, sms_segments(body))
            body, segments = bodies[timezone]
            values = list(row)
            values[_BODY] = body
            if row[_CHANNEL] == "email":
                # Only mail carries the file: written on every row it would double the
                # fan-out's bytes (bench/events.py). A message falling back to email later
                # goes without it; its text has every detail.
                values[_ATTACHMENTS] = attachments
            values[_SEGMENTS] = segments if row[_CHANNEL] == "sms" else None
            changed.append(tuple(values))
        return changed

    async def after_batch(
        self, session: AsyncSession, plan: FanoutPlan, after: int, last: int, now: datetime
    ) -> None:
        event = await event_of_announcement(session, plan.announcement_id)
        if event is None or event.id is None:
            return
        occurrence = await first_occurrence(session, event.id)
        if occurrence is None:
            return
        invited = select(
            literal(event.id, Integer),
            literal(occurrence.id, Integer),
            col(Message.supporter_id),
            literal(False, Boolean),
            literal(now, RSVPS.c.invited_at.type),
        ).where(
            col(Message.announcement_id) == plan.announcement_id,
            col(Message.supporter_id) > after,
            col(Message.supporter_id) <= last,
            col(Message.status) == "queued",
        )
        columns = ["event_id", "occurrence_id", "supporter_id", "attended", "invited_at"]
        await session.execute(insert(RSVPS).from_select(columns, invited))


register_fanout_hook(INVITATION_KIND, EventInvites())
