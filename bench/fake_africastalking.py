"""channels/africastalking/fake.py served over a real socket (uvicorn), with a fixed
latency per send. GET /stats tells what it saw."""

from __future__ import annotations

import asyncio
import os
import time

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from channels.africastalking.fake import FakeAfricasTalking

USERNAME = "bench"
API_KEY = "bench-africastalking-key"
LATENCY = float(os.environ.get("BENCH_PROVIDER_LATENCY_MS", "100")) / 1000
fake = FakeAfricasTalking(USERNAME, API_KEY)
stats = {"accepted": 0, "refused": 0, "first": 0.0, "last": 0.0}


async def messaging(request: Request) -> Response:
    body = await request.body()
    now = time.monotonic()  # a provider counts a send when it arrives
    await asyncio.sleep(LATENCY)
    answer = fake.handle(
        httpx.Request(request.method, str(request.url), headers=request.headers.raw, content=body)
    )
    if fake.requests and fake.requests[-1].message_id is not None:
        stats["accepted"] += 1
        stats["first"] = stats["first"] or now
        stats["last"] = now
    else:
        stats["refused"] += 1
    fake.requests.clear()  # a long run must not keep every request
    return Response(answer.content, answer.status_code, media_type="application/json")


async def read_stats(_: Request) -> Response:
    return JSONResponse(stats)


app = Starlette(
    routes=[
        Route("/version1/messaging", messaging, methods=["POST"]),
        Route("/stats", read_stats),
    ]
)
