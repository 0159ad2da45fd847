"""What a running Rallypoint holds: settings, database, adapters, clock."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from channels.registry import Registry
from gateway.settings import Settings
from storage.clock import Clock
from storage.db import SessionFactory
from storage.outbox_signal import OutboxSignal

if TYPE_CHECKING:
    from routing.inbound.batch import IngestBatcher


@dataclass
class AppContext:
    settings: Settings
    engine: AsyncEngine
    sessions: SessionFactory
    registry: Registry
    http_client: httpx.AsyncClient
    clock: Clock
    # Announcement fan-outs running in this process, by announcement id
    # (routing/outbound/fanout.py).
    fanouts: dict[int, asyncio.Task[int]] = field(default_factory=dict)
    # Group commit of concurrent webhooks (routing/inbound/batch.py), made on first use.
    ingest_batcher: IngestBatcher | None = None
    # Told after each commit of `sessions` that queued outbox rows; the in-process
    # dispatcher listens (storage/outbox_signal.py). build_context links the two.
    outbox_signal: OutboxSignal = field(default_factory=OutboxSignal)
    # Announcements known to be cancelled: a cancel in this process adds its id, and each
    # dispatcher looks up the ones of the rows it holds (routing/dispatch/dispatcher.py), so a row
    # claimed before the cancel is given back instead of sent.
    cancelled_announcements: set[int] = field(default_factory=set)
