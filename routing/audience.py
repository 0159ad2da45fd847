"""Who an announcement goes to: the audience selector and the queries that read it.

Within one filter any value matches (teams A or B); across filters all must match
(team A and tag "driver"). `all` selects everyone the other filters leave in.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Select, and_, exists, func, or_
from sqlalchemy import select as sa_select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gateway.context import AppContext
from gateway.settings import ALL_CHANNELS
from routing.outbound import ChannelChoice, pick_channel
from storage.models import Supporter, SupporterAddress, SupporterTag, TeamMembership


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

    @property
    def is_empty(self) -> bool:
        return not (self.teams or self.tags or self.language or self.channels or self.all)

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
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Audience:
        return cls(
            teams=tuple(dict.fromkeys(int(t) for t in data.get("teams") or ())),
            tags=_strings(data.get("tags")),
            language=_strings(data.get("language")),
            channels=_strings(data.get("channels")),
            all=bool(data.get("all")),
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
    return conditions


def audience_batch_query(audience: Audience, after: int, limit: int) -> Select[Any]:
    """The next `limit` audience members with id > `after` (keyset: memory stays flat)."""
    query = (
        select(Supporter.id, Supporter.opted_out, Supporter.preferred_channels)
        .where(col(Supporter.id) > after, *audience_conditions(audience))
        .order_by(col(Supporter.id))
        .limit(limit)
    )
    return query  # type: ignore[return-value]


async def count_audience(session: AsyncSession, audience: Audience) -> int:
    query = select(func.count()).select_from(Supporter)
    conditions = audience_conditions(audience)
    if conditions:
        query = query.where(and_(*conditions))
    return int((await session.exec(query)).one())


class BatchChooser:
    """pick_channel over plain rows for a whole batch (no per-supporter queries or objects)."""

    def __init__(
        self, ctx: AppContext, audience: Audience, now: datetime, *, has_template: bool
    ) -> None:
        self.ctx, self.now, self.has_template = ctx, now, has_template
        self.enabled = frozenset(ctx.registry.enabled_channels)
        self.excluded = audience.excluded_channels

    async def addresses(self, session: AsyncSession, ids: list[int]) -> dict[int, list[Any]]:
        rows = await session.execute(
            sa_select(
                col(SupporterAddress.supporter_id),
                col(SupporterAddress.channel),
                col(SupporterAddress.address),
                col(SupporterAddress.opted_out),
                col(SupporterAddress.last_inbound_at),
            ).where(col(SupporterAddress.supporter_id).in_(ids))
        )
        by_supporter: dict[int, list[Any]] = defaultdict(list)
        for row in rows:
            by_supporter[row.supporter_id].append(row)
        return by_supporter

    def choose(self, supporter: Any, addresses: list[Any]) -> ChannelChoice:
        # The rows carry exactly the attributes pick_channel reads from Supporter and
        # SupporterAddress; building ORM objects for a million supporters would dominate.
        return pick_channel(
            cast(Any, supporter),
            addresses,
            settings=self.ctx.settings,
            enabled=self.enabled,
            now=self.now,
            has_template=self.has_template,
            exclude=self.excluded,
        )


@dataclass
class Preview:
    """What an announcement to `audience` would do now (a dry run writes nothing)."""

    recipients: int = 0
    skipped: int = 0  # opted out
    unreachable: int = 0  # no eligible channel
    by_channel: dict[str, int] = field(default_factory=dict)


async def preview_audience(
    ctx: AppContext, audience: Audience, *, has_template: bool, batch_size: int = 1000
) -> Preview:
    preview = Preview()
    chooser = BatchChooser(ctx, audience, ctx.clock(), has_template=has_template)
    after = 0
    while True:
        # One short transaction per batch: on SQLite every transaction holds the write lock.
        async with ctx.sessions() as session:
            rows = list(await session.execute(audience_batch_query(audience, after, batch_size)))
            if not rows:
                return preview
            addresses = await chooser.addresses(session, [row.id for row in rows])
        for row in rows:
            preview.recipients += 1
            if row.opted_out:
                preview.skipped += 1
                continue
            channel = chooser.choose(row, addresses.get(row.id, [])).channel
            if channel is None:
                preview.unreachable += 1
            else:
                preview.by_channel[channel] = preview.by_channel.get(channel, 0) + 1
        after = rows[-1].id
