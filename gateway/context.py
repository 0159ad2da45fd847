"""What a running Rallypoint holds: settings, database, adapters, clock."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from channels.registry import Registry
from gateway.settings import Settings
from storage.clock import Clock
from storage.db import SessionFactory


@dataclass
class AppContext:
    settings: Settings
    engine: AsyncEngine
    sessions: SessionFactory
    registry: Registry
    http_client: httpx.AsyncClient
    clock: Clock
    # Announcement fan-outs running in this process, by announcement id (routing/fanout.py).
    fanouts: dict[int, asyncio.Task[int]] = field(default_factory=dict)
