"""Who an announcement goes to: the audience selector and the queries that read it.

Within one filter any value matches (teams A or B); across filters all must match
(team A and tag "driver"). `all` selects everyone the other filters leave in.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import ColumnElement, Select, Text, and_, exists, func, or_
from sqlalchemy import cast as cast_sql
from sqlalchemy import select as sa_select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from channels.base import ALL_CHANNELS
from routing.context import AppContext
from routing.outbound.queue import ChannelChoice, pick_channel, window_open
from storage.field_values import filter_conditions
from storage.models import (
    Conversation,
    Supporter,
    SupporterAddress,
    SupporterTag,
    TeamMembership,
)
from storage.sealed_types import stored_address


def _strings(values: Iterable[Any] | None) -> tuple[str, ...]:
    return tuple(dict.fromkeys(str(v).strip() for v in values or () if str(v).strip()))


@dataclass(frozen=True)
class Audience:
    """A resolved audience selector: team ids, not names, so a resumed fan-out reads the same."""

    teams: tuple[int, ...] = ()
    tags: tuple[str, ...] = ()
    language: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    all: bool = False
    # Custom fields: ((name, (value, …)), …), values canonical (routing/people/fields.py).
    fields: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def is_empty(self) -> bool:
        return not (
            self.teams or self.tags or self.language or self.channels or self.fields or self.all
        )

    @property
    def excluded_channels(self) -> frozenset[str]:
        """An audience limited to some channels is sent over those only."""
        if not self.channels:
            return frozenset()
        return frozenset(ALL_CHANNELS) - frozenset(self.channels)

    def as_dict(self) -> dict[str, Any]:
        return {
            "teams": list(self.teams),
            "tags": list(self.tags),
            "language": list(self.language),
            "channels": list(self.channels),
            "all": self.all,
            **({"fields": {k: list(v) for k, v in self.fields}} if self.fields else {}),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Audience:
        return cls(
            teams=tuple(dict.fromkeys(int(t) for t in data.get("teams") or ())),
            tags=_strings(data.get("tags")),
            language=_strings(data.get("language")),
            channels=_strings(data.get("channels")),
            all=bool(data.get("all")),
            fields=tuple(
                (str(name), _strings(values if isinstance(values, list) else [values]))
                for name, values in sorted((data.get("fields") or {}).items())
            ),
        )


def audience_conditions(audience: Audience) -> list[ColumnElement[bool]]:
    """WHERE conditions on `supporters` selecting the audience (EXISTS, so no duplicates)."""
    supporter_id = col(Supporter.id)
    conditions: list[ColumnElement[bool]] = []
    if audience.teams:
        conditions.append(
            exists().where(
                col(TeamMembership.supporter_id) == supporter_id,
                col(TeamMembership.team_id).in_(audience.teams),
            )
        )
    if audience.tags:
        conditions.append(
            exists().where(
                col(SupporterTag.supporter_id) == supporter_id,
                col(SupporterTag.tag).in_(audience.tags),
            )
        )
    if audience.language:
        # "es" also selects "es-MX"; stored tags may differ in case.
        language = func.lower(col(Supporter.language))
        wanted = [code.lower() for code in audience.language]
        conditions.append(
            or_(language.in_(wanted), *(language.like(f"{code}-%") for code in wanted))
        )
    if audience.channels:
        conditions.append(
            exists().where(
                col(SupporterAddress.supporter_id) == supporter_id,
                col(SupporterAddress.channel).in_(audience.channels),
            )
        )
    if audience.fields:
        conditions.extend(filter_conditions(dict(audience.fields)))
    return conditions


def audience_page_query(audience: Audience, after: int, limit: int) -> Select[Any]:
    """The next `limit` audience members after `after`, each with its conversation id and
    one row per address (a member without addresses gets one row of NULL address columns),
    in one query, ordered by supporter.

    Row layout (see the constants below): the supporter's id, opted_out and
    preferred_channels as its stored JSON text (decoded once per distinct value, not per
    row), the conversation id, then the address columns under SupporterAddress's own names,
    so a row reads as an address where pick_channel wants one.
    """
    page = (
        sa_select(
            col(Supporter.id).label("id"),
            col(Supporter.opted_out).label("opted_out"),
            cast_sql(col(Supporter.preferred_channels), Text).label("preferred"),
            col(Supporter.data_saver).label("data_saver"),
        )
        .where(col(Supporter.id) > after, *audience_conditions(audience))
        .order_by(col(Supporter.id))
        .limit(limit)
        .subquery("page")
    )
    address = col(SupporterAddress.supporter_id) == page.c.id
    return (
        sa_select(
            page.c.id.label("supporter_id"),
            page.c.opted_out.label("supporter_opted_out"),
            page.c.preferred,
            col(Conversation.id).label("conversation_id"),
            col(SupporterAddress.channel).label("channel"),
            # As stored (sealed with its index when encryption at rest is on): fan-out
            # copies it into each message as it is, with no cryptography per member.
            stored_address(col(SupporterAddress.address)).label("address"),
            col(SupporterAddress.opted_out).label("opted_out"),
            col(SupporterAddress.last_inbound_at).label("last_inbound_at"),
            page.c.data_saver.label("data_saver"),
        )
        .select_from(page)
        .outerjoin(Conversation, col(Conversation.supporter_id) == page.c.id)
        .outerjoin(SupporterAddress, address)
        .order_by(page.c.id, col(SupporterAddress.id))
    )


# Positions in an audience_page_query row.
SUPPORTER, OPTED_OUT, PREFERRED, CONVERSATION, CHANNEL, ADDRESS, ADDRESS_OPTED_OUT = range(7)
DATA_SAVER = 8  # after last_inbound_at

# One member: its rows of a page (one per address), each carrying the supporter's columns.
# Slices of the fetched rows, not objects per member: at a million supporters the
# allocations (and the garbage collector passes they trigger) cost more than the database.
MemberRows = Sequence[Any]


def by_member(rows: Sequence[Any]) -> Iterator[MemberRows]:
    """Split page rows (ordered by supporter) into one slice per member."""
    i, n = 0, len(rows)
    while i < n:
        supporter, j = rows[i][SUPPORTER], i + 1
        while j < n and rows[j][SUPPORTER] == supporter:
            j += 1
        yield rows[i:j]
        i = j


async def count_audience(session: AsyncSession, audience: Audience) -> int:
    query = select(func.count()).select_from(Supporter)
    conditions = audience_conditions(audience)
    if conditions:
        query = query.where(and_(*conditions))
    return int((await session.exec(query)).one())


class _Chooser(NamedTuple):
    """The Supporter attributes pick_channel reads."""

    opted_out: bool
    preferred_channels: list[str]
    data_saver: bool


class BatchChooser:
    """pick_channel for whole pages of members, run once per distinct case.

    Members alike in everything pick_channel reads (opt-out, preferred channels, and per
    address its channel, opt-out and, for WhatsApp, whether the 24 h window is open) get
    the same choice, so a million supporters cost a few dozen pick_channel calls.
    """

    def __init__(
        self, ctx: AppContext, audience: Audience, now: datetime, *, has_template: bool
    ) -> None:
        self.ctx, self.now, self.has_template = ctx, now, has_template
        self.enabled = frozenset(ctx.registry.enabled_channels)
        self.excluded = audience.excluded_channels
        self.choices: list[ChannelChoice] = []  # distinct choices; `choose` gives an index
        self._index: dict[tuple[Any, ...], int] = {}

    def choose(self, member: MemberRows) -> tuple[int, str | None]:
        """The index in `choices` of the member's choice, and the address it goes to."""
        first = member[0]
        if len(member) == 1:  # the common case, keyed without building a list
            channel = first[CHANNEL]
            key: tuple[Any, ...] = (
                first[OPTED_OUT],
                first[PREFERRED],
                first[DATA_SAVER],
                channel,
                first[ADDRESS_OPTED_OUT],
                channel == "whatsapp" and window_open(first, self.now),
            )
        else:
            key = (
                first[OPTED_OUT],
                first[PREFERRED],
                first[DATA_SAVER],
                *[
                    (
                        r[CHANNEL],
                        r[ADDRESS_OPTED_OUT],
                        r[CHANNEL] == "whatsapp" and window_open(r, self.now),
                    )
                    for r in member
                ],
            )
        index = self._index.get(key)
        if index is None:
            index = self._index[key] = len(self.choices)
            self.choices.append(self._pick(member))
        channel = self.choices[index].channel
        if channel is None:
            return index, None
        if len(member) == 1:
            return index, first[ADDRESS]
        # The address pick_channel would return: its by-channel map keeps the last one.
        return index, [r[ADDRESS] for r in member if r[CHANNEL] == channel][-1]

    def _pick(self, member: MemberRows) -> ChannelChoice:
        first = member[0]
        preferred = json.loads(first[PREFERRED]) if first[PREFERRED] else None
        return pick_channel(
            cast(Any, _Chooser(first[OPTED_OUT], preferred or [], bool(first[DATA_SAVER]))),
            [r for r in member if r[CHANNEL] is not None],  # rows carry the address names
            settings=self.ctx.settings,
            enabled=self.enabled,
            now=self.now,
            has_template=self.has_template,
            exclude=self.excluded,
        )


async def read_page(
    session: AsyncSession, audience: Audience, after: int, limit: int
) -> Sequence[Any]:
    """The rows of the next page of the audience (Core, not ORM: no per-row objects)."""
    conn = await session.connection()
    rows: Sequence[Any] = (await conn.execute(audience_page_query(audience, after, limit))).all()
    return rows


@dataclass
class Preview:
    """What an announcement to `audience` would do now (a dry run writes nothing)."""

    recipients: int = 0
    skipped: int = 0  # opted out
    unreachable: int = 0  # no eligible channel
    by_channel: dict[str, int] = field(default_factory=dict)


async def preview_audience(
    ctx: AppContext, audience: Audience, *, has_template: bool, batch_size: int = 5000
) -> Preview:
    preview = Preview()
    chooser = BatchChooser(ctx, audience, ctx.clock(), has_template=has_template)
    after = 0
    while True:
        # One short transaction per batch: on SQLite every transaction holds the write lock.
        async with ctx.sessions() as session:
            page = await read_page(session, audience, after, batch_size)
        if not page:
            return preview
        for member in by_member(page):
            preview.recipients += 1
            if member[0][OPTED_OUT]:
                preview.skipped += 1
                continue
            channel = chooser.choices[chooser.choose(member)[0]].channel
            if channel is None:
                preview.unreachable += 1
            else:
                preview.by_channel[channel] = preview.by_channel.get(channel, 0) + 1
        after = page[-1][SUPPORTER]
