"""Verified inbound requests the database cannot take in time: spooled, answered, replayed.

Twilio does not retry a webhook that failed, so a database that is locked or restarting
must not lose a supporter's message. `store_or_spool` gives the database
`spool_after_ms`; if it has not committed by then, or fails as an unavailable database
does, the events are appended to this process's spool file (storage/spool.py, fsync'd)
and the caller answers as if stored. Only events of verified, parsed requests get here.

A replay task then stores the spooled events, oldest first, through the same group
commit as webhooks, retrying until the database answers; the next process to start
replays what a dead one left. Replay is idempotent (inbound messages dedupe on channel
and provider id, statuses only move forward), so a request that was spooled and also
committed late, or retried by the provider meanwhile, is stored once. While this
process has records waiting, new requests are spooled behind them, to keep arrival order.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlmodel import select

from channels.base import WebhookEvent
from routing.context import AppContext
from routing.inbound.batch import batcher_for
from routing.inbound.deadlines import Deadlines, Late
from routing.inbound.spool_codec import UnreadableRecord, decode_events, encode_events
from storage.spool import (
    ClaimedFile,
    SealedRecordError,
    SpoolRecord,
    SpoolStats,
    SpoolWriter,
    claim_all,
    now_ms,
    open_payload,
    seal_payload,
    set_aside,
    spool_files,
    spool_stats,
)

log = logging.getLogger(__name__)

SPOOL = "inbound_spool"
REPLAY_CHUNK = 256
Store = Callable[[Sequence[WebhookEvent]], Awaitable[object]]


def database_unavailable(exc: BaseException) -> bool:
    """Whether `exc` says the database could not be reached or used just now (as opposed
    to a bad event, which would fail again on every replay)."""
    if isinstance(exc, OperationalError | InterfaceError | DisconnectionError):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, OSError | TimeoutError | sqlite3.OperationalError | ConnectionError)


class InboundSpool:
    """The process's spool: `store` with a deadline, and the replay task."""

    def __init__(
        self, ctx: AppContext, *, directory: Path, after: float, retry_max: float = 1.0
    ) -> None:
        self.ctx = ctx
        self.directory = directory
        self.after = after
        self.retry_max = retry_max
        self.writer = SpoolWriter(directory)
        self._deadlines = Deadlines(after)
        # One thread writes, in the order requests were spooled.
        self._io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spool")
        self.pending = 0  # records spooled by this process and not yet replayed
        self._unrotated = 0  # of which in the file still open
        self._claimed: list[ClaimedFile] = []
        self._task: asyncio.Task[None] | None = None
        self.spooled = 0
        self.replayed = 0

    async def store(self, events: Sequence[WebhookEvent], source: str, store: Store) -> bool:
        """Store `events` with `store`, or spool them: True if stored, False if spooled.
        Raises when neither the database nor the spool could take them."""
        if self.pending:  # older requests wait in the spool: these go behind them
            try:
                await self.append(events, source, "older requests wait in the spool")
                return False
            except OSError:
                pass  # the spool cannot take them: the database may
        # Not cancelled at the deadline: a cancelled transaction on a locked SQLite database
        # would hold the answer until the lock is gone. Left running, it may still commit;
        # the replay then finds the events stored and stores nothing twice.
        attempt = asyncio.ensure_future(store(events))
        late = f"no commit within {self.after * 1000:.0f} ms"
        if isinstance(attempt, asyncio.Task):  # a coroutine's: only it may end itself
            done, _ = await asyncio.wait((attempt,), timeout=self.after)
            if not done:
                attempt.add_done_callback(_forget)
                await self.append(events, source, late)
                return False
        else:  # a group commit's future: failed with Late at the deadline, item kept
            self._deadlines.watch(attempt)
        try:
            await attempt
            return True
        except Late:
            reason = late
        except Exception as error:
            if not database_unavailable(error):
                raise
            reason = f"database unavailable ({type(error).__name__})"
        await self.append(events, source, reason)
        return False

    async def append(self, events: Sequence[WebhookEvent], source: str, reason: str) -> None:
        at = now_ms()
        payload = seal_payload(encode_events(events, source), at)
        self.pending += 1  # before the write: requests arriving meanwhile queue behind
        self._unrotated += 1
        try:
            await asyncio.get_running_loop().run_in_executor(
                self._io, self.writer.append, payload, at
            )
        except BaseException:
            self.pending -= 1
            self._unrotated -= 1
            log.error("spool: could not write a %s request (%s)", source, reason, exc_info=True)
            raise
        self.spooled += 1
        if self.spooled == 1 or self.pending == 1:
            log.warning("spool: %s; %s requests spooled in %s", reason, source, self.directory)
        self.start()

    def start(self) -> None:
        """Run the replay task (if it is not running)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._replay_until_empty(), name="spool-replay")

    async def _replay_until_empty(self) -> None:
        delay = 0.05
        while True:
            try:
                found = await self.replay_once()
            except Exception as exc:
                if not database_unavailable(exc):
                    # The type only: a database error's text can hold the values (bodies).
                    log.error("spool: replay failed (%s); trying again", type(exc).__name__)
                stats = await self.stats()
                log.warning(
                    "spool: %s requests wait (oldest %.0f s); database unavailable (%s)",
                    stats.records,
                    age_seconds(stats) or 0.0,
                    type(exc).__name__,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_max)
                continue
            if not found and not self.pending:
                return

    async def replay_once(self) -> int:
        """Store everything spooled that no other process holds; how many records."""
        loop = asyncio.get_running_loop()
        # Wait for the database first: files are rotated and claimed (each holds a file
        # descriptor until replayed) once per outage, not once per attempt.
        # Shielded: a stop while the database is locked must not wait for the lock.
        probe = asyncio.ensure_future(self._select_one())
        probe.add_done_callback(_forget)
        await asyncio.shield(probe)
        rotated = self._unrotated
        await loop.run_in_executor(self._io, self.writer.rotate)
        self._unrotated -= rotated
        # Claimed and finished on the spool's thread, which records what it holds itself:
        # a cancelled replay (the process stopping) must not lose track of a locked file.
        await loop.run_in_executor(self._io, self._claim)
        todo = list(heapq.merge(*(_waiting(c) for c in self._claimed), key=lambda x: x[2].at_ms))
        for start in range(0, len(todo), REPLAY_CHUNK):
            await self._store_chunk(todo[start : start + REPLAY_CHUNK])
        for claimed, moved in await loop.run_in_executor(self._io, self._finish):
            if moved is not None:
                log.error(
                    "spool: %s unreadable records in %s; moved to %s, the other %s replayed",
                    claimed.unreadable,
                    claimed.path.name,
                    moved,
                    len(claimed.records),
                )
        self.pending = self._unrotated
        if todo:
            log.warning("spool: replayed %s requests; %s wait", len(todo), self.pending)
        return len(todo)

    async def _select_one(self) -> None:
        async with self.ctx.sessions() as session:
            await session.exec(select(1))

    def _claim(self) -> None:
        self._claimed.extend(claim_all(self.directory))

    def _finish(self) -> list[tuple[ClaimedFile, Path | None]]:
        finished = []
        while self._claimed:
            claimed = self._claimed[0]
            finished.append((claimed, claimed.finish()))
            self._claimed.pop(0)
        return finished

    async def _store_chunk(self, chunk: list[tuple[ClaimedFile, int, SpoolRecord]]) -> None:
        batcher = batcher_for(self.ctx)
        futures: list[asyncio.Future[object] | None] = []
        for claimed, _, record in chunk:
            try:
                _, events = decode_events(open_payload(record))
            except (UnreadableRecord, SealedRecordError) as exc:
                self._set_aside(claimed, record, f"unreadable ({exc})")
                futures.append(None)
                continue
            futures.append(batcher.enqueue(events) if events else None)  # type: ignore[arg-type]
        waiting = [f for f in futures if f is not None]
        results = iter(await asyncio.gather(*waiting, return_exceptions=True))
        for (claimed, index, record), future in zip(chunk, futures, strict=True):
            outcome = next(results) if future is not None else None
            if isinstance(outcome, BaseException):
                if database_unavailable(outcome) or not isinstance(outcome, Exception):
                    raise outcome
                self._set_aside(claimed, record, type(outcome).__name__)
            claimed.replayed = index + 1
            self.replayed += 1

    def _set_aside(self, claimed: ClaimedFile, record: SpoolRecord, why: str) -> None:
        path = set_aside(self.directory, claimed.path.stem, record.payload, record.at_ms)
        log.error(
            "spool: a record of %s could not be stored (%s); kept in %s",
            claimed.path.name,
            why,
            path,
        )

    async def stats(self) -> SpoolStats:
        return await asyncio.get_running_loop().run_in_executor(
            self._io, spool_stats, self.directory
        )

    async def aclose(self) -> None:
        self._deadlines.close()  # its timer would outlive the service
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._io.shutdown(wait=True)  # what the thread was doing is done
        for claimed in self._claimed:
            claimed.release()  # the next process to start takes them
        self._claimed = []
        self.writer.close()


def _forget(attempt: asyncio.Future[Any]) -> None:
    # An attempt given up on: its outcome no longer matters (the events are spooled, or a
    # probe's caller has gone), but asyncio would log an error nobody retrieved.
    if not attempt.cancelled():
        attempt.exception()


def _waiting(claimed: ClaimedFile) -> list[tuple[ClaimedFile, int, SpoolRecord]]:
    start = claimed.replayed
    return [(claimed, start + n, r) for n, r in enumerate(claimed.records[start:])]


def age_seconds(stats: SpoolStats) -> float | None:
    """How long the oldest waiting record has waited."""
    return None if stats.oldest_ms is None else max(0.0, (now_ms() - stats.oldest_ms) / 1000)


def spool_for(ctx: AppContext) -> InboundSpool:
    """The context's spool, made on first use."""
    spool = ctx.services.get(SPOOL)
    if not isinstance(spool, InboundSpool):
        settings = ctx.settings
        spool = InboundSpool(
            ctx, directory=Path(settings.spool_dir), after=settings.spool_after_ms / 1000
        )
        ctx.services[SPOOL] = spool
    return spool


async def submit_or_spool(ctx: AppContext, events: Sequence[WebhookEvent], source: str) -> bool:
    """Store a verified webhook's events through the group commit, or spool them: True if
    stored, False if spooled (see `InboundSpool.store`)."""
    if not events:
        return True
    batcher = batcher_for(ctx)
    return await spool_for(ctx).store(events, source, batcher.enqueue)


def resume_replay(ctx: AppContext) -> bool:
    """At start-up: replay what earlier processes left in the spool; whether there is any."""
    if not spool_files(Path(ctx.settings.spool_dir)):
        return False
    spool_for(ctx).start()
    return True
