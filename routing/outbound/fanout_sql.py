"""Set-based fan-out: one batch of an announcement written by INSERT … SELECT, no row in Python.

The batch is a supporter id range. Its members' channel choice depends on a few facts per
member (opt-out, data saver, preferred channels, and per enabled channel: no address, an
address, an opted-out address, a WhatsApp address with its 24 h window open), encoded in
SQL as one integer `code` beside the preferred channels' stored JSON text. The batch's
distinct (preferred, code) pairs are read first (a few dozen at most), pick_channel runs
once per pair in Python, and the messages are inserted by one statement that joins the
members with those outcomes: the database copies addresses, conversation ids and the shared
values, so a million members cost no Python per member.

Bodies with merge variables and kinds with a fan-out hook (event invitations) need a row
per member in Python: they take routing/outbound/fanout_rows.py instead.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import (
    JSON,
    ColumnElement,
    Integer,
    Select,
    Table,
    Text,
    and_,
    case,
    func,
    insert,
    literal,
    null,
    select,
    union_all,
)
from sqlalchemy import cast as cast_sql
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import SQLModel, col

from routing.context import AppContext
from routing.outbound.audience import Audience, audience_conditions
from routing.outbound.fanout_rows import CONVERSATIONS, MESSAGE_COLUMNS, MESSAGES, FanoutPlan
from routing.outbound.queue import (
    WHATSAPP_WINDOW,
    ChannelChoice,
    pick_channel,
    silence_deadline,
)
from storage.models import Supporter
from storage.sealed_types import stored_address

ADDRESSES: Table = SQLModel.metadata.tables["supporter_addresses"]
SUPPORTERS: Table = SQLModel.metadata.tables["supporters"]

# Per enabled channel, two bits of `code`: 0 no address, 1 an address, 2 opted out of
# this channel, 3 a WhatsApp address whose 24 h window is open. Bit 0 of `code` is the
# supporter's opt-out, bit 1 data saver.
NO_ADDRESS, ADDRESS, ADDRESS_OPTED_OUT, WINDOW_OPEN = range(4)
# Up to this many known cases are tried before reading a batch's own (a UNION row each).
MAX_TRIED = 256


class _Supporter(NamedTuple):
    opted_out: bool
    preferred_channels: list[str]
    data_saver: bool


class _Address(NamedTuple):
    channel: str
    address: str | None
    opted_out: bool
    last_inbound_at: datetime | None


def _is_true(column: Any) -> ColumnElement[int]:
    return case((column, 1), else_=0)


class SqlFanout:
    """The statements of one set-based batch of an announcement."""

    def __init__(self, ctx: AppContext, plan: FanoutPlan, now: datetime) -> None:
        self.ctx, self.plan = ctx, plan
        excluded = plan.audience.excluded_channels
        # Only enabled, not excluded channels reach the address check in pick_channel.
        self.channels = sorted(ctx.registry.enabled_channels - excluded)
        self.enabled = frozenset(ctx.registry.enabled_channels)
        self.excluded = excluded
        self.now = now

    def _state(self, channel: str, cutoff: datetime) -> Any:
        """The member's last address on `channel` (pick_channel keeps the last one)."""
        address = ADDRESSES.alias(f"a_{channel}")
        state: ColumnElement[int] = case(
            (address.c.opted_out, ADDRESS_OPTED_OUT),
            *(
                [
                    (
                        address.c.last_inbound_at > literal(cutoff, address.c.last_inbound_at.type),
                        WINDOW_OPEN,
                    )
                ]
                if channel == "whatsapp"
                else []
            ),
            else_=ADDRESS,
        )
        return (
            select(state)
            .where(
                address.c.supporter_id == SUPPORTERS.c.id,
                address.c.channel == literal(channel, Text),
            )
            .order_by(address.c.id.desc())
            .limit(1)
            .scalar_subquery()
        )

    def members(self, after: int, last: int) -> Select[Any]:
        """(id, preferred JSON text, code) of every member in (after, last]."""
        cutoff = self.now - WHATSAPP_WINDOW
        code: ColumnElement[int] = _is_true(SUPPORTERS.c.opted_out) + 2 * _is_true(
            SUPPORTERS.c.data_saver
        )
        for i, channel in enumerate(self.channels):
            code = code + (4 << (2 * i)) * func.coalesce(self._state(channel, cutoff), 0)
        return select(
            SUPPORTERS.c.id.label("id"),
            func.coalesce(cast_sql(SUPPORTERS.c.preferred_channels, Text), "").label("pref"),
            code.label("code"),
        ).where(*_range(self.plan.audience, after, last))

    async def pairs(self, conn: AsyncConnection, after: int, last: int) -> list[tuple[str, int]]:
        members = self.members(after, last).subquery("m")
        rows = await conn.execute(select(members.c.pref, members.c.code).distinct())
        return [(pref, code) for pref, code in rows]

    def choice(self, pref: str, code: int) -> ChannelChoice:
        """What pick_channel gives a member of this (preferred, code) pair."""
        preferred = json.loads(pref) if pref else None
        addresses = []
        for i, channel in enumerate(self.channels):
            state = (code >> (2 + 2 * i)) & 3
            if state != NO_ADDRESS:
                opened = self.now if state == WINDOW_OPEN else None
                addresses.append(_Address(channel, channel, state == ADDRESS_OPTED_OUT, opened))
        return pick_channel(
            cast(Any, _Supporter(bool(code & 1), preferred or [], bool(code & 2))),
            cast(Any, addresses),
            settings=self.ctx.settings,
            enabled=self.enabled,
            now=self.now,
            has_template=self.plan.template is not None,
            exclude=self.excluded,
        )

    def _outcomes(self, pairs: Sequence[tuple[str, int]]) -> Any:
        """One row per pair: the message columns its members get."""
        plan, start = self.plan, self.plan.due_at or self.now
        rows = []
        for pref, code in pairs:
            choice = self.choice(pref, code)
            if code & 1:
                status, error = "skipped", "opted out"
            elif choice.channel is None:
                status, error = "failed", choice.reason
            else:
                status, error = "queued", None
            deadline = silence_deadline(start, plan.fallback_after) if status == "queued" else None
            value = {"skipped": choice.skipped, "template": choice.use_template}
            rows.append(
                select(
                    literal(pref, Text).label("pref"),
                    literal(code, Integer).label("code"),
                    _typed("channel", choice.channel),
                    _typed("status", status),
                    _typed("error", error),
                    _typed("segments", plan.sms_segments if choice.channel == "sms" else None),
                    _typed("channel_choice", value),
                    _typed("fallback_at", deadline),
                    _typed("fallback_after", plan.fallback_after if deadline else None),
                )
            )
        return rows[0] if len(rows) == 1 else union_all(*rows)

    async def write(self, conn: AsyncConnection, after: int, last: int, count: int) -> None:
        """The messages of the `count` members in (after, last]: conversations first, then
        INSERT … SELECT joining each member to its pair's outcome. The pairs seen by earlier
        batches are tried first; only when they leave members out are the batch's pairs read
        (the first batch, or a new case), and the rest inserted."""
        await conn.execute(self._conversations(conn.dialect.name, after, last))
        known = self.plan.pairs_seen
        tried = bool(known) and len(known) <= MAX_TRIED
        if tried:
            count -= await _inserted(conn, self._insert(after, last, sorted(known)))
            if count <= 0:
                return
        # Untried (too many known cases), every pair of the batch is inserted here.
        pairs = await self.pairs(conn, after, last)
        new = [pair for pair in pairs if pair not in known] if tried else pairs
        if new:
            await conn.execute(self._insert(after, last, new))
            known.update(new)

    def _insert(self, after: int, last: int, pairs: Sequence[tuple[str, int]]) -> Any:
        members = self.members(after, last).cte("members").prefix_with("MATERIALIZED")
        outcomes = self._outcomes(pairs).cte("outcomes")
        conversation = (
            select(CONVERSATIONS.c.id)
            .where(CONVERSATIONS.c.supporter_id == members.c.id)
            .scalar_subquery()
        )
        address = ADDRESSES.alias("chosen")
        chosen = (
            select(stored_address(address.c.address))
            .where(
                address.c.supporter_id == members.c.id,
                address.c.channel == outcomes.c.channel,
            )
            .order_by(address.c.id.desc())
            .limit(1)
            .scalar_subquery()
        )
        plan, stamp = self.plan, self.now
        rows = (
            select(
                conversation,
                members.c.id,
                outcomes.c.channel,
                chosen,
                outcomes.c.status,
                outcomes.c.error,
                outcomes.c.segments,
                outcomes.c.channel_choice,
                outcomes.c.fallback_at,
                outcomes.c.fallback_after,
                _typed("direction", "outbound"),
                _typed("kind", plan.kind),
                _typed("body", plan.body),
                _typed("subject", plan.subject),
                _typed("attachments", list(plan.attachments)),
                _typed("template", plan.template),
                _typed("announcement_id", plan.announcement_id),
                _typed("created_at", stamp),
                _typed("updated_at", stamp),
            )
            .select_from(members)
            .join(
                outcomes,
                and_(members.c.pref == outcomes.c.pref, members.c.code == outcomes.c.code),
            )
            .order_by(members.c.id)
        )
        return insert(MESSAGES).from_select(list(MESSAGE_COLUMNS), rows)

    def _conversations(self, dialect: str, after: int, last: int) -> Any:
        missing = select(
            SUPPORTERS.c.id,
            _typed_in(CONVERSATIONS, "created_at", self.now),
            literal(False, CONVERSATIONS.c.unread.type),
            literal(0, Integer),
        ).where(
            *_range(self.plan.audience, after, last),
            ~select(CONVERSATIONS.c.id)
            .where(CONVERSATIONS.c.supporter_id == SUPPORTERS.c.id)
            .exists(),
        )
        make = postgresql_insert if dialect == "postgresql" else sqlite_insert
        statement = make(CONVERSATIONS).from_select(
            ["supporter_id", "created_at", "unread", "unread_count"], missing
        )
        # Another writer may have opened one meanwhile (PostgreSQL): keep that one.
        return statement.on_conflict_do_nothing()


def _typed(column: str, value: Any) -> ColumnElement[Any]:
    return _typed_in(MESSAGES, column, value)


def _typed_in(table: Table, column: str, value: Any) -> ColumnElement[Any]:
    """`value` bound as `table.column` binds it (sealed, JSON, UTC datetime); NULL typed
    so PostgreSQL knows the type of every column of the outcomes' UNION."""
    kind = table.c[column].type
    if value is None:
        return cast_sql(null(), kind if not isinstance(kind, JSON) else JSON).label(column)
    return literal(value, kind).label(column)


async def _inserted(conn: AsyncConnection, statement: Any) -> int:
    """Run an INSERT; the rows it inserted."""
    inserted = (await conn.execute(statement)).rowcount
    if inserted < 0:  # Python's sqlite3 tells -1 for a statement that begins with WITH
        inserted = (await conn.execute(select(func.changes()))).scalar_one()
    return int(inserted)


async def page_end(
    conn: AsyncConnection, audience: Audience, after: int, limit: int
) -> tuple[int, int]:
    """How many of the next `limit` members after `after` there are, and the last one's id."""
    page = (
        select(col(Supporter.id).label("id"))
        .where(col(Supporter.id) > after, *audience_conditions(audience))
        .order_by(col(Supporter.id))
        .limit(limit)
        .subquery("page")
    )
    count, last = (await conn.execute(select(func.count(), func.max(page.c.id)))).one()
    return int(count), int(last or after)


def _range(audience: Audience, after: int, last: int) -> list[ColumnElement[bool]]:
    return [
        col(Supporter.id) > after,
        col(Supporter.id) <= last,
        *audience_conditions(audience),
    ]
