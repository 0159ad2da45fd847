"""kill -9 of `rallypoint serve` in the middle of taking webhooks, on SQLite and
PostgreSQL: four threads post signed Twilio SMS webhooks; every one answered 200 before
the kill is in the database after a restart, each once, and the webhooks Twilio would
retry (the ones cut by the kill, posted again to the restarted server) are stored once
too. Every wait is bounded; the process is killed whatever happens."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import func, select

from gateway.app import build_context, shutdown
from storage.models import Message
from tests.channels.twilio_case import ACCOUNT_SID, AUTH_TOKEN, SMS_FROM, sign, sms_form
from tests.conftest import make_settings
from tests.deploy.test_serve_process import clean_env, free_port

THREADS = 4


class Poster:
    """Threads posting signed inbound SMS webhooks, each a new MessageSid, until stopped;
    which were answered 200 and which were cut (no answer: Twilio would not know)."""

    def __init__(self, public_url: str) -> None:
        self.url = public_url + "/webhooks/twilio"
        self.stop = threading.Event()
        self.answered: set[str] = set()
        self.cut: list[dict[str, str]] = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.post_many, args=(n,)) for n in range(THREADS)]

    def form(self, n: int) -> dict[str, str]:
        return sms_form(f"SM{n:032x}", f"+2547150{n % 10_000:05d}", f"Count me in #{n}")

    def post(self, client: httpx.Client, form: dict[str, str]) -> bool:
        headers = {
            "X-Twilio-Signature": sign(self.url, form),
            "Content-Type": "application/x-www-form-urlencoded",
        }
        try:
            answer = client.post(self.url, content=urlencode(form), headers=headers)
        except httpx.HTTPError:
            with self.lock:
                self.cut.append(form)
            return False
        if answer.status_code == 200:
            with self.lock:
                self.answered.add(form["MessageSid"])
        return True

    def post_many(self, thread: int) -> None:
        with httpx.Client(timeout=10) as client:
            n = thread
            while not self.stop.is_set():
                self.post(client, self.form(n))
                n += THREADS

    def __enter__(self) -> Poster:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=20)


def wait_for(url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise AssertionError(f"{url} did not answer in {seconds} s")


async def stored_sids(database_url: str) -> list[str]:
    ctx = build_context(make_settings(database_url))
    try:
        async with ctx.sessions() as session:
            rows = await session.execute(
                select(Message.provider_message_id, func.count())
                .where(Message.direction == "inbound")
                .group_by(Message.provider_message_id)
            )
            counts = dict(rows.all())
    finally:
        await shutdown(ctx)
    assert all(n == 1 for n in counts.values()), "a webhook was stored twice"
    return [str(sid) for sid in counts]


@pytest.fixture
def serve(database_url: str, tmp_path: Path) -> Iterator[tuple[str, list[subprocess.Popen[str]]]]:
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    started: list[subprocess.Popen[str]] = []
    yield public, started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def start_serve(database_url: str, public: str, tmp_path: Path) -> subprocess.Popen[str]:
    env = clean_env(
        RALLYPOINT_DATABASE_URL=database_url,
        RALLYPOINT_PORT=public.rsplit(":", 1)[1],
        RALLYPOINT_PUBLIC_URL=public,
        RALLYPOINT_SPOOL_DIR=str(tmp_path / "spool"),
        RALLYPOINT_RUN_DISPATCHER="false",
        TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        TWILIO_SMS_FROM=SMS_FROM,
    )
    return subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "serve"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_kill_9_mid_ingest_loses_no_answered_webhook(
    database_url: str, tmp_path: Path, serve: tuple[str, list[subprocess.Popen[str]]]
) -> None:
    public, started = serve
    started.append(start_serve(database_url, public, tmp_path))
    wait_for(public + "/healthz", 90)
    with Poster(public) as poster:
        deadline = time.monotonic() + 90
        while len(poster.answered) < 150:
            assert time.monotonic() < deadline, "webhooks were not answered"
            time.sleep(0.05)
        started[0].send_signal(signal.SIGKILL)
        started[0].wait(timeout=10)
    answered = set(poster.answered)
    assert answered

    started.append(start_serve(database_url, public, tmp_path))
    wait_for(public + "/healthz", 90)
    # Twilio does not retry, but a provider that does would post the cut ones again.
    with httpx.Client(timeout=10) as client:
        for form in poster.cut:
            assert poster.post(client, form)
    started[1].send_signal(signal.SIGTERM)
    assert started[1].wait(timeout=30) == 0

    stored = set(asyncio.run(stored_sids(database_url)))
    assert answered <= stored  # nothing answered 200 was lost
    assert {form["MessageSid"] for form in poster.cut} <= stored
    print(f"kill -9 of serve: {len(answered)} answered, {len(poster.cut)} cut and re-posted")
