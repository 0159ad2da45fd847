"""The retention service: with RALLYPOINT_RETENTION_DAYS set, `purge_old_bodies` runs every
`interval` seconds (an hour by default) beside the HTTP server, then the SQLite WAL is
checkpointed so that the blanked bytes leave the files too."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from gateway.context import GatewayContext
from routing.people.retention import purge_old_bodies
from storage.db import truncate_wal

log = logging.getLogger(__name__)

INTERVAL = 3600.0


class RetentionService:
    def __init__(self, ctx: GatewayContext, interval: float = INTERVAL) -> None:
        self.ctx = ctx
        self.interval = interval
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.purged = 0
        # Set after each round, so a test can wait for one without sleeping.
        self.round_finished = asyncio.Event()

    async def start(self) -> None:
        self._stopping.clear()
        self._task = asyncio.create_task(self._loop(), name="retention")

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def run_once(self) -> int:
        """One round; the number of messages blanked (0 when retention is off)."""
        days = self.ctx.settings.retention_days
        purged = 0
        if days is not None:
            try:
                purged = await purge_old_bodies(self.ctx.sessions, self.ctx.clock(), days)
                if purged:
                    await truncate_wal(self.ctx.engine)
            except Exception:  # a bad round must not end the service; the next one retries
                log.exception("retention round failed")
        self.purged += purged
        self.round_finished.set()
        return purged

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            await self.run_once()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.interval)
