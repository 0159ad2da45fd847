"""Futures given a deadline, all of them on one timer.

Every webhook waits for its group commit at most `spool_after_ms` before it is spooled
instead. A timer (and a waiter future) per request was a noticeable part of a webhook's
cost on the event loop; here each request costs a deque append, and one timer runs for
the oldest future still waiting. A future whose deadline passes is failed with `Late`
(the group commit skips futures that are done, and writes their items all the same).
"""

from __future__ import annotations

import asyncio
from collections import deque


class Late(Exception):
    """The deadline passed before the future had a result."""


class Deadlines:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._waiting: deque[tuple[float, asyncio.Future[object]]] = deque()
        self._timer: asyncio.TimerHandle | None = None

    def watch(self, future: asyncio.Future[object]) -> None:
        """Fail `future` with `Late` if it is not done `seconds` from now."""
        loop = asyncio.get_running_loop()
        self._waiting.append((loop.time() + self.seconds, future))
        if self._timer is None:
            self._timer = loop.call_at(self._waiting[0][0], self._expire, loop)

    def _expire(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        waiting = self._waiting
        while waiting:
            deadline, future = waiting[0]
            if not future.done():
                if deadline > now:
                    break
                future.set_exception(Late())
            waiting.popleft()
        self._timer = loop.call_at(waiting[0][0], self._expire, loop) if waiting else None

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._waiting.clear()
