"""Query functions shared by the API, routing and the CLI."""

from __future__ import annotations

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Team


async def find_team(session: AsyncSession, ref: str | int) -> Team | None:
    """A team by its id or its unique name (the contract accepts either everywhere)."""
    text = str(ref).strip()
    if text.isdigit():
        team = await session.get(Team, int(text))
        if team is not None:
            return team
    return (await session.exec(select(Team).where(Team.name == text))).first()
