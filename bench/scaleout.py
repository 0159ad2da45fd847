"""Scale-out on PostgreSQL (opt-in: `scripts/bench --only scaleout`): ingest with 1, 2 and 4
`serve` processes on one port (`serve --workers N`, SO_REUSEPORT) and dispatch with 1, 2
and 4 `rallypoint worker` processes (provider fake at 100 ms), each as a ratio to one
process, counts checked. While each runs, pg_stat_activity and pg_locks are sampled every
50 ms: what the database's sessions wait on says which table or lock would bound the next
machine, measured rather than guessed."""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench import dispatch, seed_pg, twilio_forms
from bench.ingest import CONNECTIONS, ran_out, serve
from bench.load import run_load
from bench.report import Figure, Report
from bench.servers import free_port, running

PROCESSES = (1, 2, 4)
DISPATCH_COUNT = 4_000
INGEST_SECONDS = 6
INGEST_VOLUME = 60_000  # prepared requests per run, each sent once (10,000 req/s for 6 s)
SAMPLE_EVERY = 0.05

ACTIVITY = (
    "SELECT coalesce(wait_event_type, 'CPU') || ':' || coalesce(wait_event, state),"
    " left(regexp_replace(query, '\\s+', ' ', 'g'), 48)"
    " FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()"
    " AND state <> 'idle' AND backend_type = 'client backend'"
)
LOCKS = (
    "SELECT locktype || ':' || mode || ':' || coalesce(relation::regclass::text, '')"
    " FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
    " WHERE NOT l.granted AND a.datname = $1"
)


class WaitSampler:
    """What every active session of the benchmark database waits on, sampled."""

    def __init__(self) -> None:
        self.waits: collections.Counter[str] = collections.Counter()
        self.queries: collections.Counter[tuple[str, str]] = collections.Counter()
        self.locks: collections.Counter[str] = collections.Counter()
        self.samples = 0
        self._stop = threading.Event()

    async def _run(self) -> None:
        import asyncpg

        conn = await asyncpg.connect(
            host="127.0.0.1", port=5432, user="postgres", database="postgres"
        )
        try:
            while not self._stop.is_set():
                for wait, query in await conn.fetch(ACTIVITY, seed_pg.DATABASE):
                    self.waits[wait] += 1
                    self.queries[(wait, query)] += 1
                for (lock,) in await conn.fetch(LOCKS, seed_pg.DATABASE):
                    self.locks[lock] += 1
                self.samples += 1
                await asyncio.sleep(SAMPLE_EVERY)
        finally:
            await conn.close()

    @contextmanager
    def sampling(self) -> Iterator[WaitSampler]:
        thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join(timeout=10)

    def summary(self, top: int = 4) -> str:
        """Active sessions per sample by what they wait on (CPU: running, no wait)."""
        if not self.samples:
            return "no samples"
        waits = ", ".join(f"{w} {n / self.samples:.2f}" for w, n in self.waits.most_common(top))
        queries = "; ".join(
            f"{w} on `{q}` {n / self.samples:.2f}" for (w, q), n in self.queries.most_common(2)
        )
        locks = ", ".join(f"{lk} {n / self.samples:.2f}" for lk, n in self.locks.most_common(2))
        return f"{waits} (most: {queries}); ungranted locks: {locks or 'none'}"


def _ingest(work: Path, processes: int) -> tuple[float, bool, str, str]:
    """Inbound webhooks/s against `serve --workers N`; (rate, counts right, note, waits)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    requests = twilio_forms.write_signed(
        [twilio_forms.inbound_form(i) for i in range(INGEST_VOLUME)],
        url + "/webhooks/twilio",
        work / f"scaleout-inbound-{processes}.txt",
    )
    database = seed_pg.fresh_database()
    asyncio.run(_stamp(database))
    env = {
        "RALLYPOINT_DATABASE_URL": database,
        "RALLYPOINT_HOST": "127.0.0.1",
        "RALLYPOINT_PORT": str(port),
        "RALLYPOINT_PUBLIC_URL": url,
        "RALLYPOINT_LOG_LEVEL": "WARNING",
        "RALLYPOINT_RUN_DISPATCHER": "false",
        "RALLYPOINT_WEB_CONCURRENCY": str(processes),
        "RALLYPOINT_SPOOL_DIR": str(work / f"scaleout-spool-{processes}"),
        "TWILIO_ACCOUNT_SID": twilio_forms.ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": twilio_forms.AUTH_TOKEN,
        "TWILIO_SMS_FROM": twilio_forms.TO,
    }
    sampler = WaitSampler()
    log = work / f"scaleout-serve-{processes}.log"
    # Start-up takes long on a loaded machine; every process up, not just the first to answer.
    with running(serve(), env, url + "/healthz", log, ready_timeout=120), sampler.sampling():
        time.sleep(3.0 * processes)
        result = run_load(url, "/webhooks/twilio", requests, INGEST_SECONDS, CONNECTIONS, work)
        stored = _drained(result.ok)
    if ran_out(result, INGEST_VOLUME):
        print(f"  warning: {processes} processes used up the prepared requests", flush=True)
    # wrk stops with requests in flight: those may be stored without their 200 being read.
    passed = result.bad == 0 and 0 <= stored - result.ok <= CONNECTIONS
    note = f"answered 200: {result.ok:,}, stored {stored:,}, other answers {result.bad}"
    return result.requests_per_second, passed, note, sampler.summary()


def _drained(answered: int, wait: float = 60.0) -> int:
    """Inbound rows once what was spooled under load (answered 200, database slow) has been
    replayed by the still running servers, waiting at most `wait` seconds."""
    deadline = time.monotonic() + wait
    while True:
        stored = seed_pg.count("SELECT count(*) FROM messages WHERE direction = 'inbound'")
        if stored >= answered or time.monotonic() > deadline:
            return stored
        time.sleep(1.0)


async def _stamp(url: str) -> None:
    from storage.migrate import stamp_head

    await stamp_head(url)


def _dispatch(work: Path, processes: int) -> tuple[float, bool, str, str]:
    """msg/s with N workers; (rate, counts right, note, waits)."""
    sampler = WaitSampler()
    with sampler.sampling():
        achieved, sent, stats = dispatch._send_all(  # noqa: SLF001 (the same harness)
            work,
            f"scaleout-dispatch-{processes}",
            dispatch._postgres_database(DISPATCH_COUNT),  # noqa: SLF001
            DISPATCH_COUNT,
            rate=100_000,
            limit=0,
            budget=90,
            workers=processes,
        )
    twice = seed_pg.count(
        "SELECT count(*) FROM (SELECT message_id FROM message_attempts"
        " GROUP BY message_id HAVING count(*) > 1) AS t"
    )
    accepted = int(stats["accepted"])
    passed = sent == DISPATCH_COUNT and accepted == DISPATCH_COUNT and twice == 0
    note = f"sent {sent:,} of {DISPATCH_COUNT:,}; provider accepted {accepted:,}; retried {twice}"
    return achieved, passed, note, sampler.summary()


def run(report: Report, work: Path) -> None:
    if not seed_pg.available():
        report.notes.append("scale-out: not run, no PostgreSQL on 127.0.0.1:5432")
        return
    rates: dict[str, dict[int, float]] = {"ingest": {}, "dispatch": {}}
    waits: list[str] = []
    steps = (
        ("ingest", "req/s", "serve processes", "every 200 stored, no other answer", _ingest),
        ("dispatch", "msg/s", "worker processes", "every message sent once", _dispatch),
    )
    for what, unit, who, target, measure in steps:
        seen = rates[what]
        for n in PROCESSES:
            rate, passed, note, waited = measure(work, n)
            seen[n] = rate
            waits.append(f"{what} x{n}: {waited}")
            print(f"  {what}, {n} {who}: {rate:,.0f} {unit}; waits: {waited}", flush=True)
            report.add(
                Figure(
                    "scale-out",
                    f"PostgreSQL {what}, {n} {who}",
                    rate,
                    unit,
                    seen[1] if n > 1 else None,
                    "1 process" if n > 1 else "",
                    target,
                    passed,
                    note=note,
                )
            )
    chart = report.chart("Scale-out on PostgreSQL", "processes", "per second", log=False)
    chart.curves["ingest req/s (serve --workers N)"] = sorted(rates["ingest"].items())
    chart.curves["dispatch msg/s (N workers)"] = sorted(rates["dispatch"].items())
    report.notes.append(
        "scale-out: speed-up over one process, "
        + "; ".join(
            what + " " + ", ".join(f"x{n} {seen[n] / seen[1]:.2f}" for n in PROCESSES[1:])
            for what, seen in rates.items()
        )
        + ". Sessions of the benchmark database per 50 ms sample, by wait event (CPU: running"
        " or waiting for a core): " + " | ".join(waits)
    )
