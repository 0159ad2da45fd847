"""The dispatcher as a service: stop semantics in-process, and `rallypoint worker` as a
real process answering SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from gateway import worker
from gateway.background import background_services
from gateway.settings import Settings
from routing.dispatch.dispatcher import Dispatcher
from routing.dispatch.ratelimit import RateLimits
from tests.conftest import FakeClock
from tests.routing.fake_adapter import (
    FakeAdapter,
    add_supporter,
    load,
    outbox_of,
    queue,
    with_adapters,
)

ROOT = Path(__file__).resolve().parents[2]


async def test_stop_finishes_sends_in_flight_and_releases_the_rest(
    make_client, clock: FakeClock
) -> None:
    sms = FakeAdapter(channels=("sms",), provider="fake-sms", rate_per_second=0.5)
    _, ctx = await with_adapters(make_client, sms)
    a = await queue(ctx, await add_supporter(ctx, {"sms": "+14155550501"}, name="A"))
    b = await queue(ctx, await add_supporter(ctx, {"sms": "+14155550502"}, name="B"))
    sms.hold_after_accept = {"+14155550501"}
    never = asyncio.Event()

    async def wait_forever(_: float) -> None:
        await never.wait()  # B waits for a token until it is cancelled

    limits = RateLimits(clock=lambda: clock().timestamp(), sleep=wait_forever)
    dispatcher = Dispatcher(ctx, owner="svc", limits=limits, concurrency=4)
    await dispatcher.start()

    for _ in range(2000):  # bounded: ~10 s
        if sms.held:
            break
        await asyncio.sleep(0.005)
    assert sms.held == 1
    stopping = asyncio.create_task(dispatcher.stop())
    for _ in range(20):
        await asyncio.sleep(0)
    assert not stopping.done()  # waiting for A's send
    sms.release.set()
    await asyncio.wait_for(stopping, 10)

    assert (await load(ctx, a)).status == "sent"
    assert (await load(ctx, b)).status == "queued"
    item = await outbox_of(ctx, b)
    assert item is not None and item.lease_owner is None and item.attempts == 0
    assert [m.message_id for m in sms.calls] == [a]


async def test_worker_settles_its_heap_before_the_dispatcher_starts(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Start-up's objects are frozen out of the collector before the first claim, so no
    # full collection of them stalls the first sends (gateway/heap.py).
    steps: list[str] = []
    stop = asyncio.Event()
    start = Dispatcher.start

    async def recording_start(self: Dispatcher) -> None:
        steps.append("dispatcher starts")
        stop.set()
        await start(self)

    monkeypatch.setattr(
        worker, "settle_heap", lambda threshold: steps.append(f"settle {threshold}")
    )
    monkeypatch.setattr(Dispatcher, "start", recording_start)
    assert await asyncio.wait_for(worker.run_worker(settings, stop=stop), 30) == 0
    assert steps == [f"settle {settings.gc_threshold}", "dispatcher starts"]


async def test_serve_runs_the_dispatcher_unless_told_not_to(make_client) -> None:
    client = await make_client()
    assert any(isinstance(s, Dispatcher) for s in background_services(client.ctx))
    client = await make_client(run_dispatcher=False)
    assert not any(isinstance(s, Dispatcher) for s in background_services(client.ctx))


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_worker_process_exits_zero_on_sigterm(database_url: str, tmp_path: Path) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("RALLYPOINT_", "TWILIO_", "WHATSAPP_", "TELEGRAM_", "SMTP_"))
    }
    env.update(RALLYPOINT_DATABASE_URL=database_url, RALLYPOINT_LOG_LEVEL="INFO")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "worker"],
        cwd=tmp_path,  # no .env from the repository
        env={**env, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(30, proc.kill)  # bounds the readiness wait below
    watchdog.start()
    try:
        assert proc.stderr is not None
        seen = []
        for line in proc.stderr:
            seen.append(line)
            if "no channels configured" in line:
                break
        else:
            pytest.fail("worker ended before it was ready: " + "".join(seen))
        proc.send_signal(signal.SIGTERM)
        _, rest = proc.communicate(timeout=12)
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
    assert proc.returncode == 0, "".join(seen) + rest
    assert "worker stopped" in rest
