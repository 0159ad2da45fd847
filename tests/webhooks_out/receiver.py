"""A real HTTP receiver on 127.0.0.1 (aiohttp, port 0) that checks each delivery's
signature with its own HMAC code, as a subscriber would, and answers as scripted."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Received:
    body: bytes
    signature: str
    payload: dict[str, Any]


@dataclass
class Receiver:
    url: str = ""
    answers: list[int] = field(default_factory=list)  # statuses to answer, then `default`
    default: int = 200
    received: list[Received] = field(default_factory=list)
    on_receive: Callable[[], None] | None = None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.received.append(
            Received(body, request.headers.get("Rallypoint-Signature", ""), json.loads(body))
        )
        if self.on_receive is not None:
            self.on_receive()
        status = self.answers.pop(0) if self.answers else self.default
        return web.Response(status=status, text="ok")

    def events(self) -> list[str]:
        return [r.payload["type"] for r in self.received]


def verify(secret: str, header: str, body: bytes, now: float, tolerance: int = 300) -> bool:
    """A receiver's check, written from the README's description (not our code)."""
    parts = dict(p.split("=", 1) for p in header.split(","))
    timestamp = int(parts["t"])
    expected = hmac.new(
        secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    return abs(now - timestamp) <= tolerance and hmac.compare_digest(expected, parts["v1"])


@asynccontextmanager
async def running_receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    receiver.url = f"http://127.0.0.1:{port}/hook"
    try:
        yield receiver
    finally:
        await runner.cleanup()
