"""Group commit for webhooks: concurrent requests share one transaction.

Each webhook request hands its parsed events to the process's `IngestBatcher` and waits.
One writer task takes everything queued (up to `max_batch` requests), stores it in ONE
transaction with set-based statements (`routing.inbound_bulk`), commits, and only then
answers every waiting request: a 200 still means "committed". SQLite has one writer, so
one transaction per webhook caps ingestion at a few hundred a second; a batch per commit
does not.

If a batch fails (a concurrent twin in another process won a race, or one bad event),
it is rolled back and each request is ingested on its own by `routing.inbound.ingest`,
so one bad event fails only its own request. The writer task starts on demand and ends
when the queue is empty: nothing to start, and tests without a lifespan work as is.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError
from sqlmodel.ext.asyncio.session import AsyncSession

from channels.base import InboundMessage, StatusUpdate, WebhookEvent
from gateway.context import AppContext
from routing.inbound import IngestReport, ingest, ingest_one
from routing.inbound_bulk import store_inbound_many
from routing.status_bulk import apply_status_updates

log = logging.getLogger(__name__)

MAX_BATCH = 256


@dataclass
class _Pending:
    events: Sequence[WebhookEvent]
    done: asyncio.Future[IngestReport]


class IngestBatcher:
    """Queue of webhook event lists; one writer task commits them in batches."""

    def __init__(self, ctx: AppContext, *, max_batch: int = MAX_BATCH) -> None:
        self.ctx = ctx
        self.max_batch = max_batch
        self._queue: list[_Pending] = []
        self._writer: asyncio.Task[None] | None = None
        self.batches = 0  # how many transactions were committed (for tests and stats)

    async def submit(self, events: Sequence[WebhookEvent]) -> IngestReport:
        """Store `events`; returns once they are committed (raises if they could not be)."""
        done: asyncio.Future[IngestReport] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(events, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain(), name="ingest-batcher")
        return await done

    async def aclose(self) -> None:
        """Wait for the batch in flight (the queue empties itself)."""
        if self._writer is not None:
            await asyncio.wait([self._writer], timeout=30)

    async def _drain(self) -> None:
        while self._queue:
            batch = self._queue[: self.max_batch]
            del self._queue[: self.max_batch]
            try:
                await self._write(batch)
            except BaseException as exc:  # never leave a request waiting forever
                for item in batch:
                    if not item.done.done():
                        item.done.set_exception(exc)
                raise

    async def _write(self, batch: list[_Pending]) -> None:
        try:
            async with self.ctx.sessions() as session:
                reports = await store_batch(session, self.ctx, [p.events for p in batch])
                await session.commit()
        except (SQLAlchemyError, ValueError, AssertionError) as exc:
            log.info("batched ingest of %s requests failed (%s); one by one", len(batch), exc)
            await self._one_by_one(batch)
            return
        self.batches += 1
        for item, report in zip(batch, reports, strict=True):
            if not item.done.done():
                item.done.set_result(report)

    async def _one_by_one(self, batch: list[_Pending]) -> None:
        for item in batch:
            try:
                report = await ingest(self.ctx, list(item.events))
            except Exception as exc:
                if not item.done.done():
                    item.done.set_exception(exc)
            else:
                self.batches += 1
                if not item.done.done():
                    item.done.set_result(report)


async def store_batch(
    session: AsyncSession, ctx: AppContext, requests: Sequence[Sequence[WebhookEvent]]
) -> list[IngestReport]:
    """Store every request's events in `session`, in order; one report per request.

    Runs of inbound messages and runs of status updates are stored set-based; anything
    else (opt-outs) goes through `ingest_one`.
    """
    reports = [IngestReport() for _ in requests]
    flat = [(n, event) for n, events in enumerate(requests) for event in events]
    start = 0
    while start < len(flat):
        kind = type(flat[start][1])
        end = start
        while end < len(flat) and type(flat[end][1]) is kind:
            end += 1
        run = flat[start:end]
        if kind is InboundMessage:
            ids = await store_inbound_many(session, ctx, [e for _, e in run])  # type: ignore[misc]
            for (n, _), message_id in zip(run, ids, strict=True):
                if message_id is None:
                    reports[n].duplicates += 1
                else:
                    reports[n].stored.append(message_id)
        elif kind is StatusUpdate:
            await apply_status_updates(session, ctx, [e for _, e in run])  # type: ignore[misc]
            for n, _ in run:
                reports[n].statuses += 1
        else:
            for n, event in run:
                await ingest_one(session, ctx, event, reports[n])
        start = end
    return reports


def batcher_for(ctx: AppContext) -> IngestBatcher:
    """The context's batcher, made on first use."""
    batcher = ctx.ingest_batcher
    if batcher is None:
        batcher = ctx.ingest_batcher = IngestBatcher(ctx)
    return batcher


async def submit(ctx: AppContext, events: Sequence[WebhookEvent]) -> IngestReport:
    """Store a webhook's events in the next batch; returns after its commit."""
    if not events:
        return IngestReport()
    return await batcher_for(ctx).submit(events)
