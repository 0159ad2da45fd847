"""The check-in scheduler: runs `run_due_checkins` and the event reminders
(`run_due_reminders`) every interval until stopped.

Several schedulers may run at once (one per `serve` on PostgreSQL): each run claims its
check-in (or reminder) in the database first, so a prompt goes out once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from gateway.context import GatewayContext
from routing.organizing.checkins import run_due_checkins
from routing.organizing.event_reminders import run_due_reminders

log = logging.getLogger(__name__)


class CheckinScheduler:
    def __init__(self, ctx: GatewayContext, interval: float | None = None) -> None:
        self.ctx = ctx
        self.interval = interval if interval is not None else ctx.settings.checkin_interval_seconds
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.rounds = 0
        # Set after each round, so a caller (or a test) can wait for one without sleeping.
        self.round_finished = asyncio.Event()

    async def start(self) -> None:
        self._stopping.clear()
        self._task = asyncio.create_task(self._loop(), name="checkin-scheduler")

    async def stop(self, grace: float = 10.0) -> None:
        self._stopping.set()
        if self._task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._task), grace)
        except TimeoutError:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None

    async def run_once(self) -> None:
        try:
            await run_due_checkins(self.ctx)
        except Exception:  # a bad round must not end the scheduler; the next one retries
            log.exception("check-in round failed")
        try:
            await run_due_reminders(self.ctx)
        except Exception:
            log.exception("event reminder round failed")
        self.rounds += 1
        self.round_finished.set()

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            await self.run_once()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.interval)
