"""channels/signal/fake.py served over a real socket (uvicorn) with a fixed latency per
send: POST /v2/send as signal-cli-rest-api answers it. GET /stats tells what it saw."""

from __future__ import annotations

import asyncio
import os
import time

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from channels.signal.fake import FakeSignalApi

NUMBER = "+14155550123"
LATENCY = float(os.environ.get("BENCH_PROVIDER_LATENCY_MS", "100")) / 1000
fake = FakeSignalApi(NUMBER)
stats = {"accepted": 0, "throttled": 0, "first": 0.0, "last": 0.0}


async def send(request: Request) -> Response:
    body = await request.body()
    now = time.monotonic()
    await asyncio.sleep(LATENCY)
    answer = fake.handler(
        httpx.Request(request.method, str(request.url), headers=request.headers.raw, content=body)
    )
    fake.sent.clear()  # the fake keeps what it was sent: not for a benchmark's thousands
    fake.requests.clear()
    if answer.status_code < 300:
        stats["accepted"] += 1
        stats["first"] = stats["first"] or now
        stats["last"] = now
    return Response(answer.content, answer.status_code, media_type="application/json")


async def read_stats(_: Request) -> Response:
    return JSONResponse(stats)


app = Starlette(routes=[Route("/v2/send", send, methods=["POST"]), Route("/stats", read_stats)])
