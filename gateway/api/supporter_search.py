"""Finding supporters: the one query `GET /api/v1/supporters` and the console's supporter
list both run (search by name, phone or email; team, tag, channel, opted-out and
inactivity filters), so they always agree on who matches."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import false, func, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gateway.api.pagination import decode_cursor, encode_cursor, split_page
from gateway.api.scope import visible_rows
from gateway.auth import Principal
from storage.models import Supporter, SupporterAddress, SupporterTag
from storage.search_terms import matching_supporters


@dataclass(frozen=True)
class SupporterFilters:
    """Who to list; every field is optional (None: no filter)."""

    q: str | None = None
    team: str | None = None
    tag: str | None = None
    channel: str | None = None
    assigned_to: str | None = None
    opted_out: bool | None = None
    inactive_days: int | None = None


def _search(q: str) -> Any:
    """The start of a word of the name, a phone number's last digits (4 or more, typed
    with or without the country code, spaces, dashes), an email or chat id as a whole or
    the start of an email's words: looked up in the search index
    (`storage.search_terms`), with or without encryption at rest."""
    found = matching_supporters(q)
    return false() if found is None else col(Supporter.id).in_(found)


async def supporter_query(
    session: AsyncSession, principal: Principal, filters: SupporterFilters, now: datetime
) -> Any:
    """SELECT Supporter ... for the filters, limited to what `principal` may see (a team
    lead: their team). Unordered; callers page it. An unknown team → 422."""
    stmt = await visible_rows(select(Supporter), session, principal, filters.team)
    if filters.tag:
        stmt = stmt.where(
            col(Supporter.id).in_(
                select(SupporterTag.supporter_id).where(SupporterTag.tag == filters.tag)
            )
        )
    if filters.channel:
        stmt = stmt.where(
            col(Supporter.id).in_(
                select(SupporterAddress.supporter_id).where(
                    SupporterAddress.channel == filters.channel
                )
            )
        )
    q = (filters.q or "").strip()
    if q:
        stmt = stmt.where(_search(q))
    if filters.assigned_to is not None:
        stmt = stmt.where(Supporter.assigned_to == filters.assigned_to)
    if filters.opted_out is not None:
        stmt = stmt.where(Supporter.opted_out == filters.opted_out)
    if filters.inactive_days is not None:
        # Nothing from them (no message, no event attended) for N days; someone who never
        # replied counts from when they joined.
        cutoff = now - timedelta(days=filters.inactive_days)
        since = func.coalesce(col(Supporter.last_inbound_at), col(Supporter.created_at))
        attended = col(Supporter.last_attended_at)
        stmt = stmt.where(since <= cutoff, or_(attended.is_(None), attended <= cutoff))
    return stmt


async def supporter_page(
    session: AsyncSession,
    principal: Principal,
    filters: SupporterFilters,
    *,
    now: datetime,
    limit: int,
    cursor: str | None,
) -> tuple[list[Supporter], str | None]:
    """One page of matching supporters in id order and the next page's cursor."""
    stmt = await supporter_query(session, principal, filters, now)
    after = decode_cursor(cursor, (int,))
    if after is not None:
        stmt = stmt.where(col(Supporter.id) > after[0])
    rows = list((await session.exec(stmt.order_by(col(Supporter.id)).limit(limit + 1))).all())
    page, more = split_page(rows, limit)
    return page, encode_cursor(page[-1].id) if more else None
