"""Group commit for webhooks: concurrent requests share one transaction.

Each webhook request hands its parsed events to the process's `IngestBatcher` and waits.
One writer task takes everything queued (up to `max_batch` requests), stores it in ONE
transaction with set-based statements (`routing.inbound.bulk`), commits, and only then
answers every waiting request: a 200 still means "committed". SQLite has one writer, so
one transaction per webhook caps ingestion at a few hundred a second; a batch per commit
does not.

On SQLite the plain part of a batch (most of it) is stored first on the database's own
lane (`routing.inbound.lane`: plain sqlite3, one thread hop, its own commit; off with
RALLYPOINT_SQLITE_LANE=false); what is left goes the regular way below, after that commit.

If a batch fails (a concurrent twin in another process won a race, or one bad event),
it is rolled back and each request is ingested on its own by `routing.inbound.store.ingest`,
so one bad event fails only its own request. The writer task starts on demand and ends
when the queue is empty: nothing to start, and tests without a lifespan work as is.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Sequence

from sqlalchemy.exc import SQLAlchemyError
from sqlmodel.ext.asyncio.session import AsyncSession

from channels.base import InboundMessage, StatusUpdate, WebhookEvent
from routing.context import AppContext
from routing.delivery.bulk import apply_status_updates
from routing.inbound.bulk import store_inbound_many
from routing.inbound.lane import store_batch_on_lane
from routing.inbound.store import IngestReport, ingest, ingest_one
from storage.group_commit import GroupCommit
from storage.sqlite_lane import SqliteLane, lane_path

log = logging.getLogger(__name__)

MAX_BATCH = 256


class IngestBatcher:
    """Webhook event lists from concurrent requests, committed in batches (group commit)."""

    def __init__(
        self, ctx: AppContext, *, max_batch: int = MAX_BATCH, use_lane: bool | None = None
    ) -> None:
        self.ctx = ctx
        self._group: GroupCommit[Sequence[WebhookEvent], IngestReport] = GroupCommit(
            self._write, max_batch=max_batch, name="ingest-batcher"
        )
        if use_lane is None:
            use_lane = ctx.settings.sqlite_lane
        path = lane_path(ctx.settings.database_url) if use_lane else None
        self.lane = SqliteLane(path) if path is not None else None
        self.batches = 0  # how many transactions were committed (for tests and stats)
        self.lane_batches = 0  # of which on the SQLite lane

    async def submit(self, events: Sequence[WebhookEvent]) -> IngestReport:
        """Store `events`; returns once they are committed (raises if they could not be)."""
        return await self._group.submit(events)

    def enqueue(self, events: Sequence[WebhookEvent]) -> asyncio.Future[IngestReport]:
        """Queue `events`; the future of their report (see `GroupCommit.enqueue`)."""
        return self._group.enqueue(events)

    async def aclose(self) -> None:
        await self._group.aclose()
        if self.lane is not None:
            await self.lane.aclose()
            self.lane = None

    async def _write(
        self, batch: list[Sequence[WebhookEvent]]
    ) -> list[IngestReport | BaseException]:
        on_lane: list[IngestReport | None] = [None] * len(batch)
        if self.lane is not None:
            on_lane = await self._write_on_lane(self.lane, batch)
        rest = [events for events, report in zip(batch, on_lane, strict=True) if report is None]
        regular = iter(await self._write_regular(rest) if rest else [])
        return [report if report is not None else next(regular) for report in on_lane]

    async def _write_on_lane(
        self, lane: SqliteLane, batch: list[Sequence[WebhookEvent]]
    ) -> list[IngestReport | None]:
        try:
            reports = await lane.run(lambda cursor: store_batch_on_lane(cursor, self.ctx, batch))
        except sqlite3.IntegrityError as exc:  # e.g. one bad event: it fails alone below
            log.info("SQLite lane batch of %s requests failed (%s); regular path", len(batch), exc)
            return [None] * len(batch)
        except Exception:  # the lane is only a faster way: nothing is lost by not taking it
            log.warning(
                "SQLite lane failed; %s requests go the regular path", len(batch), exc_info=True
            )
            return [None] * len(batch)
        if any(report is not None for report in reports):
            self.batches += 1
            self.lane_batches += 1
        return reports

    async def _write_regular(
        self, batch: list[Sequence[WebhookEvent]]
    ) -> list[IngestReport | BaseException]:
        try:
            async with self.ctx.sessions() as session:
                reports = await store_batch(session, self.ctx, batch)
                await session.commit()
        except (SQLAlchemyError, ValueError, AssertionError) as exc:
            log.info("batched ingest of %s requests failed (%s); one by one", len(batch), exc)
            return await self._one_by_one(batch)
        self.batches += 1
        return list(reports)

    async def _one_by_one(
        self, batch: list[Sequence[WebhookEvent]]
    ) -> list[IngestReport | BaseException]:
        results: list[IngestReport | BaseException] = []
        for events in batch:
            try:
                results.append(await ingest(self.ctx, list(events)))
                self.batches += 1
            except Exception as exc:
                results.append(exc)
        return results


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


BATCHER = "ingest_batcher"


def batcher_for(ctx: AppContext) -> IngestBatcher:
    """The context's batcher, made on first use."""
    batcher = ctx.services.get(BATCHER)
    if not isinstance(batcher, IngestBatcher):
        batcher = IngestBatcher(ctx)
        ctx.services[BATCHER] = batcher
    return batcher


async def submit(ctx: AppContext, events: Sequence[WebhookEvent]) -> IngestReport:
    """Store a webhook's events in the next batch; returns after its commit."""
    if not events:
        return IngestReport()
    return await batcher_for(ctx).submit(events)
