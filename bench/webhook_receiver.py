"""A subscriber for the outgoing-webhook benchmark, in a process of its own:
`python -m bench.webhook_receiver PORT` with RECEIVER_SECRET set. Each POST /hook has its
signature checked (its own HMAC code, as a subscriber would write it), waits
RECEIVER_LATENCY_MS (a receiver 100 ms away) and answers 200; each event id is counted
once. GET /count → {"unique", "total", "bad"}; GET /healthz → 200. Stops after an hour."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import sys
import time

from aiohttp import web


class Counts:
    def __init__(self, secret: str, latency: float) -> None:
        self.secret = secret.encode()
        self.latency = latency
        self.ids: set[str] = set()
        self.total = 0
        self.bad = 0

    def valid(self, header: str, body: bytes) -> bool:
        try:
            parts = dict(p.split("=", 1) for p in header.split(","))
            stamp = int(parts["t"])
        except (KeyError, ValueError):
            return False
        expected = hmac.new(self.secret, str(stamp).encode() + b"." + body, hashlib.sha256)
        fresh = abs(time.time() - stamp) <= 300
        return fresh and hmac.compare_digest(expected.hexdigest(), parts.get("v1", ""))

    async def hook(self, request: web.Request) -> web.Response:
        body = await request.read()
        await asyncio.sleep(self.latency)
        if not self.valid(request.headers.get("Rallypoint-Signature", ""), body):
            self.bad += 1
            return web.Response(status=400, text="bad signature")
        self.total += 1
        self.ids.add(json.loads(body)["id"])
        return web.Response(text="ok")

    async def count(self, request: web.Request) -> web.Response:
        return web.json_response({"unique": len(self.ids), "total": self.total, "bad": self.bad})


async def main(port: int) -> None:
    counts = Counts(
        os.environ["RECEIVER_SECRET"], int(os.environ.get("RECEIVER_LATENCY_MS", "100")) / 1000
    )
    app = web.Application()
    app.router.add_post("/hook", counts.hook)
    app.router.add_get("/count", counts.count)
    app.router.add_get("/healthz", lambda _: asyncio.sleep(0, web.Response(text="ok")))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=2048).start()
    await asyncio.sleep(3600)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
