"""The rows one fan-out batch writes: conversations it lacks, then one message per member,
built from plain page rows with every shared value bound once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Table
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from channels.sms_segments import sms_segments
from routing.context import AppContext
from routing.outbound.audience import (
    CONVERSATION,
    OPTED_OUT,
    SUPPORTER,
    Audience,
    BatchChooser,
    by_member,
)
from routing.outbound.queue import ChannelChoice, silence_deadline
from routing.texts.variables import BUILT_IN, FIELD_PREFIX, Template, parse
from storage.bulk_insert import BulkWriter
from storage.models import Announcement, Conversation

# Core tables: bulk inserts through the ORM cost several times more per row.
MESSAGES: Table = SQLModel.metadata.tables["messages"]
CONVERSATIONS: Table = SQLModel.metadata.tables["conversations"]


@dataclass(frozen=True)
class FanoutPlan:
    """What every message of one announcement shares, computed once."""

    announcement_id: int
    kind: str
    body: str
    subject: str | None
    template: dict[str, Any] | None
    audience: Audience
    due_at: datetime | None
    sms_segments: int
    fallback_after: int | None = None
    attachments: tuple[dict[str, Any], ...] = ()
    # The body's merge variables, or None when it has none (rendered per member then).
    variables: Template | None = None
    # Set-based batches (fanout_sql.py): the (preferred, code) cases earlier batches met,
    # tried first so a batch of known cases needs no pass to read its cases.
    pairs_seen: set[tuple[str, int]] = field(default_factory=set, compare=False, repr=False)

    @classmethod
    def of(cls, announcement: Announcement) -> FanoutPlan:
        assert announcement.id is not None
        variables = _variables(announcement.body)
        # A text without variables goes as one value, its `{{` / `}}` made single braces.
        body = variables.literal() if variables is not None else announcement.body
        return cls(
            announcement_id=announcement.id,
            kind=announcement.kind,
            body=body,
            subject=announcement.subject,
            template=announcement.template,
            audience=Audience.from_dict(announcement.audience or {}),
            due_at=announcement.send_at,
            sms_segments=sms_segments(body),
            variables=variables if variables is not None and variables.has_variables else None,
            fallback_after=announcement.fallback_after,
            attachments=tuple(announcement.attachments or ()),
        )


def _variables(body: str) -> Template | None:
    # Checked when the announcement was made; a text that no longer parses goes as written.
    if "{" not in body and "}" not in body:
        return None
    try:
        template = parse(body)
    except ValueError:
        return None
    if any(
        v.name not in BUILT_IN and not v.name.startswith(FIELD_PREFIX) for v in template.variables
    ):
        return None  # written before merge variables: its braces are text
    return template


# Per member of a page: (name, the custom values the body uses), when it has variables.
Personal = dict[int, tuple[str, Any]]


MESSAGE_COLUMNS = (
    "conversation_id",
    "supporter_id",
    "channel",
    "address",
    "status",
    "error",
    "segments",
    "channel_choice",
    "fallback_at",
    "fallback_after",
    "direction",
    "kind",
    "body",
    "subject",
    "attachments",
    "template",
    "announcement_id",
    "created_at",
    "updated_at",
)


async def conversation_ids(
    session: AsyncSession, writer: BulkWriter, rows: Sequence[Any], now: datetime
) -> dict[int, int]:
    """Conversation ids of the page's supporters that had none, created in bulk."""
    missing = list(dict.fromkeys(r[SUPPORTER] for r in rows if r[CONVERSATION] is None))
    if not missing:
        return {}
    created_at = writer.bind(CONVERSATIONS, "created_at", now)
    await writer.insert(
        CONVERSATIONS,
        ("supporter_id", "created_at", "unread", "unread_count"),
        [(i, created_at, False, 0) for i in missing],
        # Another writer may have opened one meanwhile (PostgreSQL): use that one.
        on_conflict_do_nothing=True,
    )
    found = await session.execute(
        select(col(Conversation.supporter_id), col(Conversation.id)).where(
            col(Conversation.supporter_id).in_(missing)
        )
    )
    return {supporter_id: convo_id for supporter_id, convo_id in found}


def message_rows(
    ctx: AppContext,
    plan: FanoutPlan,
    writer: BulkWriter,
    page: Sequence[Any],
    created: dict[int, int],
    now: datetime,
    personal: Personal | None = None,
) -> list[tuple[Any, ...]]:
    """One messages row per member. A body with merge variables (`personal` given) is
    rendered for each member, with its own SMS segments; a plain one is bound once."""
    chooser = BatchChooser(ctx, plan.audience, now, has_template=plan.template is not None)
    shared = _shared_values(writer, plan, now)
    render = plan.variables if personal is not None else None
    # Per distinct choice: channel, status, error, segments, bound channel_choice JSON.
    outcomes: list[tuple[Any, ...]] = []
    rows = []
    for member in by_member(page):
        index, address = chooser.choose(member)
        first = member[0]
        if index == len(outcomes):
            outcomes.append(_outcome(writer, plan, chooser.choices[index], first[OPTED_OUT], now))
        channel, status, error, segments, choice, fallback_at, fallback_after = outcomes[index]
        supporter, conversation = first[SUPPORTER], first[CONVERSATION]
        values = shared
        if render is not None and personal is not None:
            name, fields = personal.get(supporter, ("", {}))
            body = render.render(name, fields)
            if segments is not None:
                segments = sms_segments(body)
            # The body is the third shared value; sealed when encryption is on.
            values = (*shared[:2], writer.bind(MESSAGES, "body", body), *shared[3:])
        rows.append(
            (
                created[supporter] if conversation is None else conversation,
                supporter,
                channel,
                address,  # as stored on the supporter (sealed or not): see audience
                status,
                error,
                segments,
                choice,
                fallback_at,
                fallback_after,
                *values,
            )
        )
    return rows


def _outcome(
    writer: BulkWriter, plan: FanoutPlan, choice: ChannelChoice, opted_out: bool, now: datetime
) -> tuple[Any, ...]:
    if opted_out:
        status, error = "skipped", "opted out"
    elif choice.channel is None:
        status, error = "failed", choice.reason
    else:
        status, error = "queued", None
    value = {"skipped": choice.skipped, "template": choice.use_template}
    deadline = (
        silence_deadline(plan.due_at or now, plan.fallback_after) if status == "queued" else None
    )
    return (
        choice.channel,
        status,
        error,
        plan.sms_segments if choice.channel == "sms" else None,
        writer.bind(MESSAGES, "channel_choice", value),
        # Only queued messages wait for a delivery (routing/dispatch/silence.py).
        writer.bind(MESSAGES, "fallback_at", deadline) if deadline else None,
        plan.fallback_after if deadline else None,
    )


def _shared_values(writer: BulkWriter, plan: FanoutPlan, now: datetime) -> tuple[Any, ...]:
    """The message columns every row of the announcement shares, bound once."""
    stamp = writer.bind(MESSAGES, "created_at", now)
    return (
        "outbound",
        plan.kind,
        # One sealed copy per batch: every copy holds the same text (the announcement's).
        writer.bind(MESSAGES, "body", plan.body),
        writer.bind(MESSAGES, "subject", plan.subject),
        writer.bind(MESSAGES, "attachments", list(plan.attachments)),
        writer.bind(MESSAGES, "template", plan.template),
        plan.announcement_id,
        stamp,
        stamp,
    )
