"""Dispatcher heartbeats, so a dead dispatcher's rows are taken over at once, not when
their leases run out (a minute by default).

A running dispatcher has a row in `dispatchers` (owner, host, pid) and beats every
BEAT_SECONDS. Any other dispatcher, when it starts and then at each beat, takes over the
rows leased by one that is dead: on this host, its process is gone (the next `serve` or
`worker` after a crash or kill -9 takes over as it starts); anywhere, it has not beaten
for STALE_SECONDS. Taking over gives the leases back; the next claim settles the dead
one's open attempts as interrupted and sends them again (asking the provider first where
it can say, routing/dispatch/dispatcher.py). Hosts' clocks must agree within a few
seconds (NTP), as they must for leases anyway.

The count of live dispatchers is also how senders' rate limits hold across processes:
each dispatcher paces every sender at rate / live dispatchers (routing/dispatch/
ratelimit.py `RateLimits.share`), learnt at each beat; one that joins while others run
waits a beat before its first claim, so the others have slowed down by then.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import Table, delete, func, select, update
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from routing.context import AppContext

log = logging.getLogger(__name__)

BEAT_SECONDS = 5.0
STALE_SECONDS = 20.0
DISPATCHERS: Table = SQLModel.metadata.tables["dispatchers"]
OUTBOX: Table = SQLModel.metadata.tables["outbox"]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def this_host() -> str:
    return socket.gethostname()[:64]


class Liveness:
    def __init__(
        self,
        ctx: AppContext,
        owner: str,
        *,
        host: str | None = None,
        pid: int | None = None,
        alive: Callable[[int], bool] = pid_alive,
    ) -> None:
        self.ctx = ctx
        self.owner = owner
        self.host = host or this_host()
        self.pid = os.getpid() if pid is None else pid
        self.alive = alive

    async def register(self) -> int:
        """Join; the number of live dispatchers, this one included."""
        now = self.ctx.clock()
        async with self.ctx.sessions() as session:
            await session.execute(delete(DISPATCHERS).where(DISPATCHERS.c.owner == self.owner))
            await session.execute(
                DISPATCHERS.insert().values(
                    owner=self.owner, host=self.host, pid=self.pid, started_at=now, beat_at=now
                )
            )
            await session.commit()
        # Counted after the commit: of two dispatchers joining at once, the later one to
        # count sees both (counted in the same transaction, each could see only itself).
        async with self.ctx.sessions() as session:
            return await self._live(session, now)

    async def beat(self) -> int:
        """Beat; the number of live dispatchers, this one included."""
        now = self.ctx.clock()
        async with self.ctx.sessions() as session:
            await session.execute(
                update(DISPATCHERS).where(DISPATCHERS.c.owner == self.owner).values(beat_at=now)
            )
            live = await self._live(session, now)
            await session.commit()
        return live

    @staticmethod
    async def _live(session: AsyncSession, now: datetime) -> int:
        stale = now - timedelta(seconds=STALE_SECONDS)
        query = select(func.count()).where(DISPATCHERS.c.beat_at >= stale)
        return max(1, int((await session.execute(query)).scalar_one()))

    async def unregister(self) -> None:
        async with self.ctx.sessions() as session:
            await session.execute(delete(DISPATCHERS).where(DISPATCHERS.c.owner == self.owner))
            await session.commit()

    async def take_over_dead(self) -> int:
        """Give back the leases of every dead dispatcher and forget it; the rows freed."""
        now = self.ctx.clock()
        stale = now - timedelta(seconds=STALE_SECONDS)
        async with self.ctx.sessions() as session:
            others = (
                await session.execute(
                    select(
                        DISPATCHERS.c.owner,
                        DISPATCHERS.c.host,
                        DISPATCHERS.c.pid,
                        DISPATCHERS.c.beat_at,
                    ).where(DISPATCHERS.c.owner != self.owner)
                )
            ).all()
            dead = [
                row.owner
                for row in others
                if row.beat_at < stale or (row.host == self.host and not self.alive(row.pid))
            ]
            if not dead:
                return 0
            freed = await session.execute(
                update(OUTBOX)
                .where(OUTBOX.c.lease_owner.in_(dead), OUTBOX.c.lease_until >= now)
                .values(lease_owner=None, lease_until=None)
            )
            await session.execute(delete(DISPATCHERS).where(DISPATCHERS.c.owner.in_(dead)))
            await session.commit()
        count = int(freed.rowcount or 0)  # type: ignore[attr-defined]
        log.warning("took over %s rows from %s dead dispatcher(s)", count, len(dead))
        return count
