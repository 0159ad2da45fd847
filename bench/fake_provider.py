"""channels/twilio/fake.py served over a real socket (uvicorn), with a fixed latency per
send and, optionally, a rate limit it enforces itself: above LIMIT sends in any 1 s
sliding window it answers 429 (Twilio error 20429). GET /stats tells what it saw.

The same server answers WhatsApp Cloud's /v21.0/{phone id}/messages and the Telegram Bot
API's /bot{token}/sendMessage through channels/whatsapp_cloud/fake.py and
channels/telegram/fake.py, with the same latency, for the other channels' dispatch runs."""

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
from channels.telegram.fake import FakeTelegramApi
from channels.twilio.fake import FakeTwilio
from channels.whatsapp_cloud.fake import FakeWhatsAppCloud

LATENCY = float(os.environ.get("BENCH_PROVIDER_LATENCY_MS", "100")) / 1000
LIMIT = float(os.environ.get("BENCH_PROVIDER_LIMIT", "0"))  # 0: no limit
# Apprise takes only letters and digits in a Twilio auth token (bench/apprise_peer.py).
AUTH_TOKEN = os.environ.get("BENCH_TWILIO_AUTH_TOKEN", twilio_forms.AUTH_TOKEN)
WHATSAPP_TOKEN = "bench-whatsapp-token"  # noqa: S105
WHATSAPP_PHONE_ID = "106540352242922"
TELEGRAM_TOKEN = "123456:bench-telegram-token"  # noqa: S105
fake = FakeTwilio(twilio_forms.ACCOUNT_SID, AUTH_TOKEN)
whatsapp = FakeWhatsAppCloud(WHATSAPP_TOKEN, WHATSAPP_PHONE_ID, api_base="http://127.0.0.1/v21.0")
telegram = FakeTelegramApi(TELEGRAM_TOKEN)
whatsapp_sent: dict[str, int] = {}  # sends accepted per recipient
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


def _count(now: float, status_code: int) -> None:
    if status_code < 300:
        stats["accepted"] += 1
        stats["first"] = stats["first"] or now
        stats["last"] = now


async def whatsapp_messages(request: Request) -> Response:
    body = await request.body()
    now = time.monotonic()
    await asyncio.sleep(LATENCY)
    # The fake's own base is fixed: only the path and headers matter to it.
    url = "http://127.0.0.1" + request.url.path
    answer = whatsapp(httpx.Request("POST", url, headers=request.headers.raw, content=body))
    for record in whatsapp.requests:
        if record.wamid is not None:
            to = str(record.json.get("to"))
            whatsapp_sent[to] = whatsapp_sent.get(to, 0) + 1
    whatsapp.requests.clear()  # its request log would grow with every send
    _count(now, answer.status_code)
    return Response(answer.content, answer.status_code, media_type="application/json")


async def telegram_method(request: Request) -> Response:
    body = await request.body()
    now = time.monotonic()
    await asyncio.sleep(LATENCY)
    url = "http://127.0.0.1" + request.url.path
    answer = telegram.handler(httpx.Request("POST", url, headers=request.headers.raw, content=body))
    telegram.calls.clear()
    _count(now, answer.status_code)
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
    for chat, texts in telegram.sent.items():
        counts[chat] = counts.get(chat, 0) + len(texts)
    for to, n in whatsapp_sent.items():
        counts[to] = counts.get(to, 0) + n
    return JSONResponse(counts)


app = Starlette(
    routes=[
        Route("/2010-04-01/Accounts/{sid}/Messages.json", messages, methods=["POST"]),
        Route("/2010-04-01/Accounts/{sid}/Messages.json", listing, methods=["GET"]),
        Route("/v21.0/{phone_id}/messages", whatsapp_messages, methods=["POST"]),
        Route("/bot{token}/{method}", telegram_method, methods=["POST"]),
        Route("/stats", read_stats),
        Route("/recipients", recipients),
    ]
)
