"""What a running Rallypoint holds: settings, database, adapters, clock."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Protocol

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from channels.registry import Registry
from routing.config import RoutingSettings
from storage.clock import Clock
from storage.db import SessionFactory
from storage.outbox_signal import OutboxSignal


class Service(Protocol):
    async def aclose(self) -> None: ...


@dataclass
class AppContext:
    settings: RoutingSettings
    engine: AsyncEngine
    sessions: SessionFactory
    registry: Registry
    http_client: httpx.AsyncClient
    clock: Clock
    # Announcement fan-outs running in this process, by announcement id
    # (routing/outbound/fanout.py).
    fanouts: dict[int, asyncio.Task[int]] = field(default_factory=dict)
    # Long-lived helpers made on first use (the ingest batcher of routing/inbound/batch.py),
    # by name; each is closed when the process shuts down.
    services: dict[str, Service] = field(default_factory=dict)
    # Told after each commit of `sessions` that queued outbox rows; the in-process
    # dispatcher listens (storage/outbox_signal.py). build_context links the two.
    outbox_signal: OutboxSignal = field(default_factory=OutboxSignal)
    # Told after each committed ingest (webhook batch or single ingest) in this process: the
    # console's live feed listens (routing/inbox/feed.py).
    inbound_signal: OutboxSignal = field(default_factory=OutboxSignal)
    # Announcements known to be cancelled: a cancel in this process adds its id, and each
    # dispatcher looks up the ones of the rows it holds (routing/dispatch/dispatcher.py), so a row
    # claimed before the cancel is given back instead of sent.
    cancelled_announcements: set[int] = field(default_factory=set)
