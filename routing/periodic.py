"""A loop that does one round of work every `interval` seconds beside the HTTP server or
the worker, until stopped (fallback on silence, retention)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

log = logging.getLogger(__name__)


class Periodic:
    """Subclasses give `name` and `round()`; a round that raises is logged and the next
    one runs as planned. `done` counts what the rounds did; `round_finished` is set after
    each, so a test can wait for one without sleeping."""

    name = "periodic"

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.done = 0
        self.round_finished = asyncio.Event()

    async def round(self) -> int:
        raise NotImplementedError

    async def start(self) -> None:
        self._stopping.clear()
        self._task = asyncio.create_task(self._loop(), name=self.name)

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def run_once(self) -> int:
        done = 0
        try:
            done = await self.round()
        except Exception:  # a bad round must not end the loop; the next one retries
            log.exception("%s round failed", self.name)
        self.done += done
        self.round_finished.set()
        return done

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            await self.run_once()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.interval)
