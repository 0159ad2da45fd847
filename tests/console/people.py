"""Seeding supporters for the console's supporter and team tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Supporter, SupporterAddress, SupporterTag, TeamMembership


async def add_supporter(
    session: AsyncSession,
    name: str,
    *,
    at: datetime,
    phone: str | None = None,
    email: str | None = None,
    teams: Sequence[int] = (),
    tags: Sequence[str] = (),
    last_inbound_at: datetime | None = None,
    opted_out: bool = False,
) -> int:
    """A supporter with an sms and/or email address (stored canonical); returns the id."""
    supporter = Supporter(
        name=name,
        created_at=at,
        updated_at=at,
        last_inbound_at=last_inbound_at,
        opted_out=opted_out,
        opted_out_at=at if opted_out else None,
    )
    session.add(supporter)
    await session.flush()
    assert supporter.id is not None
    sid = supporter.id
    if phone:
        session.add(SupporterAddress(supporter_id=sid, channel="sms", address=phone))
    if email:
        session.add(SupporterAddress(supporter_id=sid, channel="email", address=email))
    session.add_all(TeamMembership(supporter_id=sid, team_id=t) for t in teams)
    session.add_all(SupporterTag(supporter_id=sid, tag=t) for t in tags)
    await session.flush()
    return sid
