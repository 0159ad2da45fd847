"""A provider fake (an httpx handler, as channels/<x>/fake.py write them) served over real
HTTP on a loopback port, so the app reaches it exactly as it would reach the provider."""

from __future__ import annotations

import inspect
import logging
import socket
from collections.abc import Awaitable, Callable

import httpx
from aiohttp import web

log = logging.getLogger(__name__)
Handler = Callable[[httpx.Request], httpx.Response | Awaitable[httpx.Response]]
# Headers aiohttp sets itself for the body it sends.
HOP_HEADERS = frozenset({"content-length", "transfer-encoding", "connection", "content-encoding"})


class LoopbackServer:
    """Serve `handler` on 127.0.0.1 (a free port, bound before the app is configured);
    `after` runs after every request, e.g. to notice what the fake was asked to send."""

    def __init__(self, name: str, handler: Handler, after: Callable[[], None]) -> None:
        self.name = name
        self.handler = handler
        self.after = after
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.port = int(self._socket.getsockname()[1])
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._serve)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.SockSite(self._runner, self._socket).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self._socket.close()

    async def _serve(self, incoming: web.Request) -> web.StreamResponse:
        request = httpx.Request(
            incoming.method,
            str(incoming.url),
            headers=[(k, v) for k, v in incoming.headers.items() if k.lower() != "host"],
            content=await incoming.read(),
        )
        try:
            answer = self.handler(request)
            if inspect.isawaitable(answer):
                answer = await answer
            content = await answer.aread()
        except httpx.TransportError:
            # A scripted dropped connection: the client sees the connection close.
            if incoming.transport is not None:
                incoming.transport.close()
            raise web.HTTPServiceUnavailable() from None
        finally:
            self.after()
        headers = {k: v for k, v in answer.headers.items() if k.lower() not in HOP_HEADERS}
        return web.Response(status=answer.status_code, body=content, headers=headers)
