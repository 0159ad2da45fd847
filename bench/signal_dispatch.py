"""Benchmark: one `rallypoint worker` sending queued Signal messages through the Signal
adapter to signal-cli-rest-api's fake (bench/fake_signal.py) at 100 ms latency, against
the Signal adapter alone (no database, no dispatcher) in the same run. Target: the worker
reaches at least 0.7 of the adapter-alone rate.

`python -m bench.signal_dispatch bare URL COUNT CONCURRENCY` is the baseline's process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bench import seed
from bench.dispatch import CONCURRENCY, LATENCY_MS
from bench.fake_signal import NUMBER
from bench.report import Figure, Report
from bench.servers import ROOT, free_port, python, running

TARGET_SHARE = 0.7


def provider_cmd(port: int) -> list[str]:
    return [
        python(),
        *("-m", "uvicorn", "bench.fake_signal:app", "--host", "127.0.0.1"),
        *("--port", str(port), "--log-level", "warning"),
    ]


def worker_env(database_url: str, provider: str) -> dict[str, str]:
    return {
        "RALLYPOINT_DATABASE_URL": database_url,
        "RALLYPOINT_LOG_LEVEL": "WARNING",
        "SIGNAL_API_BASE": provider,
        "SIGNAL_NUMBER": NUMBER,
        "SIGNAL_RATE_PER_SECOND": "100000",
    }


def worker_rate(work: Path, count: int, budget: float = 90) -> tuple[float, int]:
    db = work / "signal.db"
    seed.migrate(db)
    seed.seed_supporters(db, count, channel="signal")
    seed.seed_queued_messages(db, count, channel="signal")
    port = free_port()
    provider = f"http://127.0.0.1:{port}"
    env = {"BENCH_PROVIDER_LATENCY_MS": str(LATENCY_MS)}
    worker = [python(), "-m", "gateway.cli", "worker"]
    sent = 0
    with contextlib.ExitStack() as stack:
        stack.enter_context(
            running(provider_cmd(port), env, provider + "/stats", work / "signal-provider.log")
        )
        log = work / "signal-worker.log"
        stack.enter_context(running(worker, worker_env(f"sqlite:///{db}", provider), None, log))
        deadline = time.monotonic() + budget
        query = "SELECT count(*) FROM messages WHERE status = 'sent'"
        while time.monotonic() < deadline:
            sent = seed.count(db, query)
            if sent >= count:
                break
            time.sleep(0.25)
        stats = httpx.get(provider + "/stats", timeout=5).json()
    span = stats["last"] - stats["first"]
    return ((stats["accepted"] - 1) / span if span > 0 else 0.0), sent


def bare_rate(work: Path, count: int) -> float:
    port = free_port()
    provider = f"http://127.0.0.1:{port}"
    env = {"BENCH_PROVIDER_LATENCY_MS": str(LATENCY_MS)}
    with running(provider_cmd(port), env, provider + "/stats", work / "bare-signal.log"):
        args = [python(), "-m", "bench.signal_dispatch", "bare", provider, str(count)]
        out = subprocess.run(  # noqa: S603
            [*args, str(CONCURRENCY)],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
            cwd=ROOT,
        )
    return float(json.loads(out.stdout.strip().splitlines()[-1])["rate"])


def run(report: Report, work: Path, count: int = 6_000) -> None:
    achieved, sent = worker_rate(work, count)
    bare = bare_rate(work, count)
    share = achieved / bare if bare else 0.0
    report.add(
        Figure(
            "dispatch",
            f"{count:,} Signal messages, API latency {LATENCY_MS} ms",
            achieved,
            "msg/s",
            bare,
            "the Signal adapter alone, no database",
            f">= {TARGET_SHARE} of the adapter alone, every status recorded",
            share >= TARGET_SHARE and sent == count,
            note=f"{share:.2f} of the adapter-alone rate; sent recorded for {sent:,}",
        )
    )


async def bare(provider: str, count: int, concurrency: int) -> int:
    """The Signal adapter alone through the same provider client as a worker's."""
    from channels.base import OutboundMessage
    from gateway.app import build_context
    from gateway.heap import settle_heap
    from gateway.settings import Settings

    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url="sqlite://",
        signal_api_base=provider,
        signal_number=NUMBER,
        dispatch_concurrency=concurrency,
    )
    ctx = build_context(settings)
    adapter = ctx.registry.by_provider["signal"]
    settle_heap(settings.gc_threshold)
    messages = iter(
        OutboundMessage(message_id=i, channel="signal", to=seed.phone(i), body="Rally at 6")
        for i in range(1, count + 1)
    )
    sent = 0

    async def sender() -> None:
        nonlocal sent
        for message in messages:
            await adapter.send(message)
            sent += 1

    started = time.monotonic()
    await asyncio.gather(*(sender() for _ in range(concurrency)))
    elapsed = time.monotonic() - started
    await ctx.http_client.aclose()
    await ctx.engine.dispose()
    print(json.dumps({"sent": sent, "seconds": elapsed, "rate": sent / elapsed}))
    return 0


if __name__ == "__main__":
    from gateway.cli import run_loop

    _, url, total, in_flight = sys.argv[1:5]
    raise SystemExit(run_loop(bare(url, int(total), int(in_flight))))
