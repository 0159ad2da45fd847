"""Work that runs beside the HTTP server: the dispatcher and the inbound SMTP listener."""

from __future__ import annotations

from typing import Protocol

from gateway.context import AppContext


class BackgroundService(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def background_services(ctx: AppContext) -> list[BackgroundService]:
    """The services `serve` runs in-process, in start order."""
    services: list[BackgroundService] = []
    return services
