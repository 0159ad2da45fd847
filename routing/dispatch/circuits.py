"""The circuit breakers' state in the database (`channel_circuits`): written on each change
by the dispatcher that saw it, read by /healthz and /metrics in any process."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import SQLModel

from routing.context import AppContext
from routing.dispatch.breaker import CLOSED, Change

CIRCUITS: Table = SQLModel.metadata.tables["channel_circuits"]


@dataclass(frozen=True)
class CircuitState:
    channel: str
    sender: str  # masked: the last four characters of our own sender id
    state: str
    failures: int
    until: datetime | None
    updated_at: datetime


def mask(sender: str) -> str:
    return "…" + sender[-4:] if len(sender) > 4 else sender


async def save_change(ctx: AppContext, change: Change) -> None:
    now = ctx.clock()
    values = {
        "channel": change.channel,
        "sender": change.sender[:128],
        "state": change.state,
        "failures": change.failures,
        "until": change.until,
        "updated_at": now,
    }
    async with ctx.sessions() as session:
        dialect = (await session.connection()).dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        stmt = insert(CIRCUITS).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=[CIRCUITS.c.channel, CIRCUITS.c.sender],
            set_={k: stmt.excluded[k] for k in ("state", "failures", "until", "updated_at")},
        )
        await session.execute(stmt)
        await session.commit()


async def read_circuits(ctx: AppContext, *, include_closed: bool = False) -> list[CircuitState]:
    """Circuits that are open or probing (all known ones with `include_closed`)."""
    query = select(CIRCUITS).order_by(CIRCUITS.c.channel, CIRCUITS.c.sender)
    if not include_closed:
        query = query.where(CIRCUITS.c.state != CLOSED)
    async with ctx.sessions() as session:
        rows = (await session.execute(query)).all()
    return [
        CircuitState(
            channel=row.channel,
            sender=mask(row.sender),
            state=row.state,
            failures=row.failures,
            until=row.until,
            updated_at=row.updated_at,
        )
        for row in rows
    ]
