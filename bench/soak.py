"""Benchmark: soak and crash. `serve` (with its dispatcher) and a `worker` are killed
with SIGKILL at a random moment of each cycle, `cycles` times, while signed Twilio
webhooks come in and queued one-on-ones go out through the loopback fake (100 ms a send);
then both run until the outbox is empty. Reported on SQLite and PostgreSQL: webhooks
answered 200 and how many of them are missing from the database (lost), messages queued,
sent, not sent (lost) and sent twice (duplicated), and the RSS of `serve` just before each
kill (the curve should stay flat). Run with `scripts/bench --only soak` (it is not part of
the default run: 100 cycles on two databases take several minutes).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import httpx
from twilio.request_validator import RequestValidator

from bench import seed, seed_pg, twilio_forms
from bench.dispatch import provider_cmd, worker_env
from bench.report import Figure, Report
from bench.servers import ROOT, free_port, python, rss_mb, running, wait_http

CYCLES = 100
QUEUED = 3_000
SUPPORTERS = 3_000


@dataclass
class Soak:
    accepted: set[str] = field(default_factory=set)  # inbound sids answered 200
    rss: list[float] = field(default_factory=list)
    posted: int = 0


def _post_webhooks(url: str, soak: Soak, stop: threading.Event, start: int) -> None:
    """Signed inbound SMS, one after another, until `stop`; a refused or cut connection
    (the server was killed) is not counted as accepted."""
    validator = RequestValidator(twilio_forms.AUTH_TOKEN)
    n = start
    with httpx.Client(timeout=5) as client:
        while not stop.is_set():
            n += 1
            form = twilio_forms.inbound_form(n)
            headers = {
                "X-Twilio-Signature": validator.compute_signature(url, form),
                "Content-Type": "application/x-www-form-urlencoded",
            }
            soak.posted += 1
            with contextlib.suppress(httpx.HTTPError):
                if client.post(url, content=urlencode(form), headers=headers).status_code == 200:
                    soak.accepted.add(form["MessageSid"])


def _query(url: str, sql: str) -> list[tuple[object, ...]]:
    from sqlalchemy import text

    from storage.db import make_engine

    async def read() -> list[tuple[object, ...]]:
        engine = make_engine(url)
        async with engine.connect() as conn:
            rows = [tuple(r) for r in (await conn.execute(text(sql))).all()]
        await engine.dispose()
        return rows

    return asyncio.run(read())


def _database(work: Path, kind: str) -> str:
    if kind == "postgresql":
        url = seed_pg.fresh_database()
        seed_pg.seed_queued(QUEUED)
        return url
    db = work / "soak.db"
    seed.migrate(db)
    seed.seed_supporters(db, SUPPORTERS)
    seed.seed_queued_messages(db, QUEUED)
    return f"sqlite:///{db}"


def _soak(
    work: Path, kind: str, cycles: int, rng: random.Random
) -> tuple[Soak, dict[str, int], int]:
    url = _database(work, kind)
    provider_port, port = free_port(), free_port()
    provider = f"http://127.0.0.1:{provider_port}"
    webhook = f"http://127.0.0.1:{port}/webhooks/twilio"
    env = {
        **os.environ,
        **worker_env(url, provider, 1000),
        "RALLYPOINT_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "RALLYPOINT_PORT": str(port),
        "RALLYPOINT_SPOOL_DIR": str(work / f"spool-{kind}"),
    }
    serve = [python(), "-m", "gateway.cli", "serve"]
    worker = [python(), "-m", "gateway.cli", "worker"]
    soak = Soak()
    latency = {"BENCH_PROVIDER_LATENCY_MS": "100", "BENCH_PROVIDER_LIMIT": "0"}
    with running(provider_cmd(provider_port), latency, provider + "/stats", work / "p.log"):
        for cycle in range(cycles + 1):
            last = cycle == cycles
            log = (work / f"{kind}-{cycle % 2}.log").open("wb")
            procs = [
                subprocess.Popen(args, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
                for args in (serve, worker)
            ]
            stop = threading.Event()
            try:
                wait_http(f"http://127.0.0.1:{port}/healthz", timeout=60)
                load = threading.Thread(
                    target=_post_webhooks, args=(webhook, soak, stop, cycle * 1_000_000)
                )
                load.start()
                if last:  # no kill: run until every queued message went out
                    deadline = time.monotonic() + 180
                    while time.monotonic() < deadline and _unsent(url):
                        time.sleep(0.5)
                    stop.set()
                    load.join()
                    for proc in procs:
                        proc.send_signal(signal.SIGTERM)
                else:
                    time.sleep(rng.uniform(0.3, 1.5))
                    soak.rss.append(rss_mb(procs[0].pid))
                    for proc in procs:
                        proc.send_signal(signal.SIGKILL)
                    stop.set()
                    load.join()
            finally:
                stop.set()
                for proc in procs:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        proc.wait(timeout=20)
                    if proc.poll() is None:
                        proc.kill()
                        proc.wait(timeout=5)
                log.close()
        sent_to = httpx.get(provider + "/recipients", timeout=10).json()
    return soak, sent_to, len(_unsent(url))


def _unsent(url: str) -> list[tuple[object, ...]]:
    return _query(
        url,
        "SELECT id FROM messages WHERE direction = 'outbound' AND status NOT IN"
        " ('sent', 'delivered', 'read')",
    )


def _stored(url: str, sids: set[str]) -> int:
    rows = _query(url, "SELECT provider_message_id FROM messages WHERE direction = 'inbound'")
    return len(sids & {str(r[0]) for r in rows})


def run(report: Report, work: Path, cycles: int = CYCLES) -> None:
    kinds = ["sqlite"] + (["postgresql"] if seed_pg.available() else [])
    for kind in kinds:
        started = time.monotonic()
        soak, sent_to, unsent = _soak(work, kind, cycles, random.Random(11))
        url = seed_pg.URL if kind == "postgresql" else f"sqlite:///{work / 'soak.db'}"
        stored = _stored(url, soak.accepted)
        lost_in = len(soak.accepted) - stored
        # Only the queued one-on-ones (one per seeded supporter): the webhooks' senders get
        # automatic replies too, several over the run, which are not duplicates.
        queued_to = {seed.phone(i) for i in range(1, QUEUED + 1)}
        duplicated = sum(n - 1 for to, n in sent_to.items() if to in queued_to)
        name = f"soak, {kind}, {cycles} kill -9 cycles"
        report.add(
            Figure(
                "soak",
                f"{kind}: webhooks answered 200, then lost",
                lost_in,
                "",
                target="0",
                passed=lost_in == 0,
                note=(
                    f"{len(soak.accepted):,} answered 200 of {soak.posted:,} posted;"
                    f" {stored:,} stored"
                ),
            )
        )
        report.add(
            Figure(
                "soak",
                f"{kind}: queued messages never sent",
                unsent,
                "",
                target="0",
                passed=unsent == 0,
                note=f"{QUEUED:,} queued; {len(queued_to & set(sent_to)):,} of them reached",
            )
        )
        report.add(
            Figure(
                "soak",
                f"{kind}: messages sent twice",
                duplicated,
                "",
                note="a send in flight at a kill is looked up in the provider's list first",
            )
        )
        report.add(
            Figure(
                "soak",
                f"{kind}: serve RSS before the last kill",
                soak.rss[-1] if soak.rss else 0.0,
                "MiB",
                baseline=soak.rss[0] if soak.rss else None,
                baseline_label="before the first kill",
                note=f"{time.monotonic() - started:.0f} s for the run",
            )
        )
        chart = report.chart(name, "kill -9 cycle", "serve RSS (MiB)", log=False)
        chart.curves["RSS before the kill"] = list(enumerate(soak.rss, 1))
