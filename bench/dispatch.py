"""Benchmark 4: one `rallypoint worker` process sending queued SMS through the Twilio
adapter to a loopback fake with 100 ms latency; then with a 30/s configured limit that
the fake enforces itself (429 above 30 sends in any 1 s window)."""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from bench import seed, seed_pg, twilio_forms
from bench.report import Figure, Report
from bench.servers import ROOT, free_port, python, running

LATENCY_MS = 100
CONCURRENCY = 256  # RALLYPOINT_DISPATCH_CONCURRENCY's default


def worker_env(database_url: str, provider: str, rate: float) -> dict[str, str]:
    return {
        "RALLYPOINT_DATABASE_URL": database_url,
        "RALLYPOINT_LOG_LEVEL": "WARNING",
        "TWILIO_ACCOUNT_SID": twilio_forms.ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": twilio_forms.AUTH_TOKEN,
        "TWILIO_SMS_FROM": twilio_forms.TO,
        "TWILIO_API_BASE": provider,
        "TWILIO_RATE_PER_SECOND": str(rate),
    }


def provider_cmd(port: int) -> list[str]:
    return [
        python(),
        *("-m", "uvicorn", "bench.fake_provider:app", "--host", "127.0.0.1"),
        *("--port", str(port), "--log-level", "warning"),
    ]


def _sqlite_database(work: Path, name: str, count: int) -> tuple[str, Callable[[], int]]:
    db = work / f"{name}.db"
    for old in work.glob(f"{name}.db*"):
        old.unlink()
    seed.migrate(db)
    seed.seed_supporters(db, count)
    seed.seed_queued_messages(db, count)
    return f"sqlite:///{db}", lambda: seed.count(
        db, "SELECT count(*) FROM messages WHERE status = 'sent'"
    )


def _postgres_database(count: int) -> tuple[str, Callable[[], int]]:
    url = seed_pg.fresh_database()
    seed_pg.seed_queued(count)
    return url, seed_pg.count_sent


def _send_all(
    work: Path,
    name: str,
    database: tuple[str, Callable[[], int]],
    count: int,
    *,
    rate: float,
    limit: float,
    budget: float,
    workers: int = 1,
) -> tuple[float, int, dict[str, float]]:
    url, sent_so_far = database
    port = free_port()
    provider = f"http://127.0.0.1:{port}"
    env = {"BENCH_PROVIDER_LATENCY_MS": str(LATENCY_MS), "BENCH_PROVIDER_LIMIT": str(limit)}
    worker = [python(), "-m", "gateway.cli", "worker"]
    with contextlib.ExitStack() as stack:
        stack.enter_context(
            running(provider_cmd(port), env, provider + "/stats", work / f"{name}-provider.log")
        )
        for n in range(workers):
            log = work / f"{name}-worker{n}.log"
            stack.enter_context(running(worker, worker_env(url, provider, rate), None, log))
        deadline = time.monotonic() + budget
        sent = 0
        while time.monotonic() < deadline:
            sent = sent_so_far()
            if sent >= count:
                break
            time.sleep(0.25)
        stats = httpx.get(provider + "/stats", timeout=5).json()
    span = stats["last"] - stats["first"]
    achieved = (stats["accepted"] - 1) / span if span > 0 else 0.0
    return achieved, sent, stats


def bare_sender_rate(work: Path, count: int, concurrency: int = CONCURRENCY) -> float:
    """The baseline: the Twilio adapter alone (bench/bare_sender.py), same fake provider."""
    port = free_port()
    provider = f"http://127.0.0.1:{port}"
    env = {"BENCH_PROVIDER_LATENCY_MS": str(LATENCY_MS), "BENCH_PROVIDER_LIMIT": "0"}
    with running(provider_cmd(port), env, provider + "/stats", work / "bare-provider.log"):
        args = [python(), "-m", "bench.bare_sender", provider, str(count), str(concurrency)]
        out = subprocess.run(  # noqa: S603
            args, capture_output=True, text=True, timeout=120, check=True, cwd=ROOT
        )
    return float(json.loads(out.stdout.strip().splitlines()[-1])["rate"])


def run(report: Report, work: Path, count: int = 12_000) -> None:
    database = _sqlite_database(work, "dispatch", count)
    achieved, sent, stats = _send_all(
        work, "dispatch", database, count, rate=100_000, limit=0, budget=90
    )
    bare = bare_sender_rate(work, count)
    share = achieved / bare if bare else 0.0
    report.add(
        Figure(
            "dispatch",
            f"{count:,} sms, provider latency {LATENCY_MS} ms",
            achieved,
            "msg/s",
            bare,
            "the Twilio adapter alone, no database",
            ">= 1,000 msg/s, every status recorded",
            achieved >= 1000 and sent == count,
            note=f"sent status recorded for {sent:,} of {count:,}",
        )
    )
    limited = 360
    database = _sqlite_database(work, "dispatch-limit", limited)
    achieved, sent, stats = _send_all(
        work, "dispatch-limit", database, limited, rate=30, limit=30, budget=60
    )
    report.add(
        Figure(
            "dispatch",
            "configured 30/s: achieved rate",
            achieved,
            "msg/s",
            30.0,
            "the configured limit",
            "within 3% of 30/s, zero 429s",
            abs(achieved - 30) <= 0.9 and stats["throttled"] == 0 and sent == limited,
            note=f"429s: {stats['throttled']}, sent {sent} of {limited}",
        )
    )
    report.add(
        Figure(
            "dispatch",
            "429 answers at 30/s",
            stats["throttled"],
            "",
            target="0",
            passed=stats["throttled"] == 0,
        )
    )
    run_postgres(report, work)
    report.notes.append(
        "dispatch: a `rallypoint worker` claims outbox rows in chunks with their send-time"
        " checks and attempt rows in one transaction, keeps RALLYPOINT_DISPATCH_CONCURRENCY"
        f" (256) sends in flight and group-commits the results; at {LATENCY_MS} ms per send"
        " that allows ~2,500 msg/s, so the figure is bound by one process's CPU (the Twilio"
        " adapter, the HTTP client and the recorder's SQL) and by the fake provider, one"
        " uvicorn process on the same two cores; two workers on PostgreSQL share those cores"
        " too. The limited run paces each sender 2% under its configured rate with no burst,"
        " and a guard on actual send times keeps every 1.015 s window within the rate; it"
        " counts a send in the step that hands it to the adapter. The last 429 (one a run, in"
        " the first second) came from a full garbage collection of the cold worker's heap"
        " (100-170 ms) landing between the guard and the send: the worker now freezes its"
        " start-up heap before the first claim, and the send no longer waits for a new task."
        " The unlimited figure's baseline is the Twilio adapter alone (bench/bare_sender.py):"
        " the same sends through the same provider client, same fake, same concurrency, no"
        " database, no dispatcher; it is this machine's ceiling for the HTTP side of a send"
        " (py-spy: ~40% of the worker's CPU is httpx's own request/response handling, ~20%"
        " aiohttp's, ~12% the claim and result SQL). In this run the worker reached"
        f" {share:.2f} of the adapter-alone rate."
    )


def run_postgres(report: Report, work: Path, count: int = 8_000) -> None:
    """One vs two worker processes sharing a PostgreSQL outbox (FOR UPDATE SKIP LOCKED)."""
    if not seed_pg.available():
        report.notes.append("dispatch on PostgreSQL: not run, no PostgreSQL on 127.0.0.1:5432")
        return
    rates = []
    for workers in (1, 2):
        database = _postgres_database(count)
        achieved, sent, stats = _send_all(
            work,
            f"dispatch-pg{workers}",
            database,
            count,
            rate=100_000,
            limit=0,
            budget=90,
            workers=workers,
        )
        rates.append(achieved)
        report.add(
            Figure(
                "dispatch",
                f"PostgreSQL, {workers} worker process{'es' if workers > 1 else ''}",
                achieved,
                "msg/s",
                rates[0] if workers > 1 else None,
                "1 worker" if workers > 1 else "",
                "every message sent once",
                sent == count and stats["accepted"] == count,
                note=f"sent {sent:,} of {count:,}; the provider accepted {stats['accepted']:,}",
            )
        )
        chart = report.chart(
            "Dispatch on PostgreSQL, 100 ms provider latency",
            "worker processes",
            "messages per second",
            log=False,
        )
        chart.curves.setdefault("sent msg/s", []).append((workers, achieved))
    # Two workers, one sender limited to 30/s: each paces it at rate / live dispatchers.
    limited = 360
    achieved, sent, stats = _send_all(
        work,
        "dispatch-pg2-limit",
        _postgres_database(limited),
        limited,
        rate=30,
        limit=30,
        budget=60,
        workers=2,
    )
    report.add(
        Figure(
            "dispatch",
            "PostgreSQL, 2 workers, configured 30/s",
            achieved,
            "msg/s",
            30.0,
            "the configured limit",
            "at most 30/s together, zero 429s",
            achieved <= 30.9 and stats["throttled"] == 0 and sent == limited,
            note=f"429s: {stats['throttled']}, sent {sent} of {limited}",
        )
    )
