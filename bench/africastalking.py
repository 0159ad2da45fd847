"""Africa's Talking dispatch: one `rallypoint worker` sending queued SMS through the
Africa's Talking adapter (routed there by RALLYPOINT_SMS_ROUTES) to a loopback fake of its
messaging API with 100 ms latency, against the adapter alone sending to the same fake
(bench/bare_sender.py): the same pattern as bench/dispatch.py for Twilio."""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from pathlib import Path

import httpx

from bench import fake_africastalking
from bench.dispatch import CONCURRENCY, LATENCY_MS, _sqlite_database
from bench.report import Figure, Report
from bench.servers import ROOT, free_port, python, running

TARGET_SHARE = 0.7


def provider_cmd(port: int) -> list[str]:
    return [
        python(),
        *("-m", "uvicorn", "bench.fake_africastalking:app", "--host", "127.0.0.1"),
        *("--port", str(port), "--log-level", "warning"),
    ]


def worker_env(database_url: str, provider: str) -> dict[str, str]:
    return {
        "RALLYPOINT_DATABASE_URL": database_url,
        "RALLYPOINT_LOG_LEVEL": "WARNING",
        "AFRICASTALKING_USERNAME": fake_africastalking.USERNAME,
        "AFRICASTALKING_API_KEY": fake_africastalking.API_KEY,
        "AFRICASTALKING_CALLBACK_SECRET": "bench-callback-secret-0123",
        "AFRICASTALKING_API_BASE": provider,
        "AFRICASTALKING_RATE_PER_SECOND": "100000",
        "RALLYPOINT_SMS_ROUTES": "*:africastalking",
    }


def _provider(work: Path, name: str) -> tuple[str, contextlib.AbstractContextManager[object]]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {"BENCH_PROVIDER_LATENCY_MS": str(LATENCY_MS)}
    return url, running(provider_cmd(port), env, url + "/stats", work / f"{name}-provider.log")


def dispatched(work: Path, count: int, budget: float = 90) -> tuple[float, int, dict[str, float]]:
    url, sent_so_far = _sqlite_database(work, "africastalking", count)
    provider, server = _provider(work, "africastalking")
    worker = [python(), "-m", "gateway.cli", "worker"]
    with server, running(worker, worker_env(url, provider), None, work / "at-worker.log"):
        deadline = time.monotonic() + budget
        sent = 0
        while time.monotonic() < deadline:
            sent = sent_so_far()
            if sent >= count:
                break
            time.sleep(0.25)
        stats = httpx.get(provider + "/stats", timeout=5).json()
    span = stats["last"] - stats["first"]
    return ((stats["accepted"] - 1) / span if span > 0 else 0.0), sent, stats


def adapter_alone(work: Path, count: int) -> float:
    provider, server = _provider(work, "at-bare")
    with server:
        args = [
            *(python(), "-m", "bench.bare_sender", provider, str(count), str(CONCURRENCY)),
            "africastalking",
        ]
        out = subprocess.run(  # noqa: S603
            args, capture_output=True, text=True, timeout=120, check=True, cwd=ROOT
        )
    return float(json.loads(out.stdout.strip().splitlines()[-1])["rate"])


def run(report: Report, work: Path, count: int = 6_000) -> None:
    achieved, sent, stats = dispatched(work, count)
    bare = adapter_alone(work, count)
    share = achieved / bare if bare else 0.0
    report.add(
        Figure(
            "africastalking",
            f"{count:,} sms, provider latency {LATENCY_MS} ms",
            achieved,
            "msg/s",
            bare,
            "the Africa's Talking adapter alone",
            f">= {TARGET_SHARE} of the adapter alone, every status recorded",
            share >= TARGET_SHARE and sent == count,
            note=f"sent status recorded for {sent:,} of {count:,}; refused {stats['refused']}",
        )
    )
    report.notes.append(
        "africastalking: the dispatch benchmark's pattern with Africa's Talking as the SMS"
        " provider (RALLYPOINT_SMS_ROUTES=*:africastalking): a `rallypoint worker` sending"
        f" to a loopback fake of its messaging API at {LATENCY_MS} ms, against the adapter"
        f" alone with the same client, concurrency and fake; this run: {share:.2f} of it."
    )
