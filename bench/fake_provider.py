"""channels/twilio/fake.py served over a real socket (uvicorn), with a fixed latency per
send and, optionally, a rate limit it enforces itself: above LIMIT sends in any 1 s
sliding window it answers 429 (Twilio error 20429). GET /stats tells what it saw."""

from __future__ import annotations

import asyncio
import os
import time
from collections import deque

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bench import twilio_forms
from channels.twilio.fake import FakeTwilio

LATENCY = float(os.environ.get("BENCH_PROVIDER_LATENCY_MS", "100")) / 1000
LIMIT = float(os.environ.get("BENCH_PROVIDER_LIMIT", "0"))  # 0: no limit
fake = FakeTwilio(twilio_forms.ACCOUNT_SID, twilio_forms.AUTH_TOKEN)
window: deque[float] = deque()
stats = {"accepted": 0, "throttled": 0, "first": 0.0, "last": 0.0}


async def messages(request: Request) -> Response:
    body = await request.body()
    now = time.monotonic()  # a provider counts a send when it arrives
    while window and window[0] <= now - 1.0:
        window.popleft()
    if LIMIT and len(window) >= LIMIT:
        stats["throttled"] += 1
        await asyncio.sleep(LATENCY)
        return JSONResponse({"code": 20429, "message": "Too Many Requests"}, status_code=429)
    window.append(now)
    await asyncio.sleep(LATENCY)
    answer = fake.handle(
        httpx.Request(request.method, str(request.url), headers=request.headers.raw, content=body)
    )
    if answer.status_code < 300:
        stats["accepted"] += 1
        stats["first"] = stats["first"] or now
        stats["last"] = now
    return Response(answer.content, answer.status_code, media_type="application/json")


async def read_stats(_: Request) -> Response:
    return JSONResponse(stats)


async def listing(request: Request) -> Response:
    """Twilio's Messages list (the dispatcher asks it after a crash), no latency."""
    answer = fake.handle(httpx.Request("GET", str(request.url), headers=request.headers.raw))
    return Response(answer.content, answer.status_code, media_type="application/json")


async def recipients(_: Request) -> Response:
    """How many messages each recipient was sent (duplicates show as counts above 1)."""
    counts: dict[str, int] = {}
    for sent in fake.sent:
        to = str(sent.get("To"))
        counts[to] = counts.get(to, 0) + 1
    return JSONResponse(counts)


app = Starlette(
    routes=[
        Route("/2010-04-01/Accounts/{sid}/Messages.json", messages, methods=["POST"]),
        Route("/2010-04-01/Accounts/{sid}/Messages.json", listing, methods=["GET"]),
        Route("/stats", read_stats),
        Route("/recipients", recipients),
    ]
)
