"""kill -9 of `rallypoint worker` in the middle of sending, on SQLite and PostgreSQL: the
next worker takes the dead one's rows over as it starts (no lease is waited out: the
lease here is ten minutes), every queued message is sent, and none twice, because the
sends a kill interrupted are looked up in the (fake) Twilio's message list first.

The fake Twilio runs as a real HTTP server on loopback, 100 ms a send; every wait is
bounded, and the processes are killed whatever happens."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import func, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from channels.twilio.fake import FakeTwilio
from gateway.app import build_context, shutdown
from routing.context import AppContext
from storage.models import Message
from tests.channels.twilio_case import ACCOUNT_SID, AUTH_TOKEN, SETTINGS, SMS_FROM
from tests.conftest import make_settings
from tests.deploy.test_serve_process import clean_env, free_port
from tests.routing.fake_adapter import add_supporter, queue

ROOT = Path(__file__).resolve().parents[2]
MESSAGES = 160
LATENCY = 0.1


class TwilioServer:
    """channels/twilio/fake.py over a real socket, in a thread of its own."""

    def __init__(self) -> None:
        self.fake = FakeTwilio(ACCOUNT_SID, AUTH_TOKEN)
        self.port = free_port()
        app = Starlette(routes=[Route("/{path:path}", self.answer, methods=["GET", "POST"])])
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="error")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    async def answer(self, request: Request) -> Response:
        body = await request.body()
        if request.method == "POST":
            await asyncio.sleep(LATENCY)
        wire = httpx.Request(
            request.method, str(request.url), headers=request.headers.raw, content=body
        )
        answer = self.fake.handle(wire)
        return Response(answer.content, answer.status_code, headers=dict(answer.headers))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> TwilioServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "fake Twilio did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


async def queue_messages(ctx: AppContext) -> list[str]:
    phones = [f"+2547140{n:05d}" for n in range(MESSAGES)]
    for n, phone in enumerate(phones):
        await queue(ctx, await add_supporter(ctx, {"sms": phone}), f"Meeting at {n}")
    return phones


async def sent_count(ctx: AppContext) -> int:
    async with ctx.sessions() as session:
        query = select(func.count()).select_from(Message).where(Message.status == "sent")
        return int((await session.execute(query)).scalar_one())


@pytest.fixture
def workers(database_url: str, tmp_path: Path) -> Iterator[Callable[[str], subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []

    def start(twilio_url: str) -> subprocess.Popen[str]:
        env = clean_env(
            RALLYPOINT_DATABASE_URL=database_url,
            RALLYPOINT_LEASE_SECONDS="600",
            RALLYPOINT_DISPATCH_CONCURRENCY="8",
            TWILIO_ACCOUNT_SID=ACCOUNT_SID,
            TWILIO_AUTH_TOKEN=AUTH_TOKEN,
            TWILIO_SMS_FROM=SMS_FROM,
            TWILIO_API_BASE=twilio_url,
            TWILIO_RATE_PER_SECOND="1000",
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "worker"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(tmp_path / f"worker-{len(started)}.log", "w"),  # noqa: SIM115
            text=True,
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_kill_9_mid_dispatch_loses_nothing_and_sends_nothing_twice(
    database_url: str, workers: Callable[[str], subprocess.Popen[str]]
) -> None:
    with asyncio.Runner() as runner:
        ctx = build_context(make_settings(database_url, **SETTINGS))
        try:
            phones = runner.run(queue_messages(ctx))
            with TwilioServer() as twilio:
                first = workers(twilio.url)
                wait_for(lambda: len(twilio.fake.sent) >= MESSAGES // 4, 60, "the first sends")
                first.send_signal(signal.SIGKILL)
                first.wait(timeout=10)
                at_kill = len(twilio.fake.sent)
                recorded = runner.run(sent_count(ctx))
                assert 0 < at_kill < MESSAGES  # killed mid-dispatch

                second = workers(twilio.url)
                # Ten-minute leases: only the takeover at start lets this finish in time.
                wait_for(lambda: runner.run(sent_count(ctx)) == MESSAGES, 90, "every send")
                second.send_signal(signal.SIGTERM)
                assert second.wait(timeout=20) == 0
        finally:
            runner.run(shutdown(ctx))

    per_phone = Counter(str(m.get("To")) for m in twilio.fake.sent)
    assert sorted(per_phone) == sorted(phones)  # every message reached Twilio
    duplicates = sum(n - 1 for n in per_phone.values())
    in_flight = at_kill - recorded  # taken by Twilio, answer not stored at the kill
    print(
        f"kill -9: {at_kill} at Twilio, {recorded} recorded, {in_flight} in flight; "
        f"{len(twilio.fake.list_requests)} lookups, {duplicates} duplicates"
    )
    assert duplicates == 0
    assert len(twilio.fake.list_requests) >= in_flight
