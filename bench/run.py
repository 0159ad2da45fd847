"""Run every benchmark, print each figure with its same-run baseline and ratio, and
rewrite BENCHMARKS.md and bench/scaling.png. `scripts/bench` is the one command."""

from __future__ import annotations

import argparse
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from bench import (
    africastalking,
    channel_dispatch,
    console,
    crypto,
    dispatch,
    events,
    fanout,
    imap,
    import_csv,
    ingest,
    reach,
    scale,
    scaleout,
    signal_dispatch,
    soak,
    webhooks_out,
)
from bench.report import Report, write_markdown, write_plot
from bench.servers import ROOT
from bench.wrk import have_wrk

BUDGET = 570.0  # seconds for ingest, fan-out and dispatch
# The console benchmark: building its database the first time (a few minutes, then cached
# in bench/.data/), the pages and the SSE rounds.
CONSOLE_SECONDS = 420.0

HISTORY = [
    "Profiled with py-spy (`py-spy record --nonblocking` on `serve` under the ingest load)"
    " before optimising: one transaction per webhook gave 96 req/s, with requests queueing"
    " on SQLite's single write lock (BEGIN IMMEDIATE + busy_timeout). Webhooks are now"
    " group-committed: concurrent requests queue their parsed events, one writer stores up"
    " to 256 requests in one transaction with set-based statements and answers each only"
    " after the commit (routing/inbound/batch.py, inbound_bulk.py, status_bulk.py). The next"
    " profile showed INSERT ... RETURNING falling back to one row per statement on SQLite"
    " (ids are now allocated up front) and FastAPI's dependency solving, with a sync"
    " dependency run in a thread per request, on the webhook path (now a plain Starlette"
    " route). Inbound went 96 -> ~1,500 req/s and status callbacks 570 -> ~1,900 req/s. A"
    " third round found the batch lookups scanning indexes whose first column (channel) was"
    " not constrained, SDK signature checks computing two HMACs, and Starlette routing on"
    " the webhook path: inbound reached ~2,500 req/s, status callbacks ~4,000 req/s."
    " Dispatch: py-spy put ~90% of the worker in httpx's own connection pool, which slows"
    " down sharply with hundreds of requests in flight; sends now go through httpx over"
    " aiohttp's pool (httpx-aiohttp), and claims/results are batched: 92 -> ~1,150 msg/s.",
    "Fourth round (py-spy at 200 Hz on `serve`, cProfile/pyinstrument on one batch, gc"
    " callbacks), on a VM about half as fast as the previous one (the bare endpoint fell"
    " from ~5,800 to ~2,300 req/s), where inbound was ~950 req/s with p99 ~160-200 ms. Three"
    " causes, three changes: (1) ~28% of the server's CPU went to SQLAlchemy and aiosqlite"
    " for the batch (~0.85 ms per statement, 12 ms for a batch of one): the plain part of a"
    " batch now goes through one sqlite3 transaction on a thread of its own (the SQLite"
    " lane; a test checks its rows are byte-identical to SQLAlchemy's), 21.7 -> ~3.9 ms for"
    " 32 webhooks; (2) WAL checkpoints run by the committing connection were the batch"
    " p99 (23 -> 6 ms once they moved to a PASSIVE checkpoint on a second thread); (3) full"
    " GC collections paused the event loop up to ~200 ms: `serve` now freezes its start-up"
    " objects out of the collector and collects young objects less often"
    " (gateway/heap.py, RALLYPOINT_GC_THRESHOLD). Cheaper form parsing and signature"
    " strings trimmed the handler. Inbound went ~950 -> ~2,100 req/s (p99 ~45 ms), status"
    " callbacks ~1,400 -> ~3,100 req/s on that VM.",
    "The full run on that slower VM (2026-11-25 02:51 UTC, AMD EPYC, code as of this"
    " fourth round) missed four absolute targets while the ratios held: bare endpoint"
    " 2,324 req/s, inbound 2,567 (1.10 of bare, p99 36 ms), status callbacks 2,989 (bare"
    " 3,348); fan-out 100k 4.5 s (baseline 2.5 s), 1M 43.3 s (baseline 21.3 s), RSS"
    " +34 MiB; dispatch 587 msg/s (adapter alone 958), 30/s held with zero 429s;"
    " PostgreSQL 1 vs 2 workers 378 vs 511 msg/s. What carries from VM to VM is the ratio to"
    " the same-run baselines; the absolute figures move with the machine.",
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--budget", type=float, help="seconds for everything")
    parser.add_argument(
        "--only",
        choices=[
            *("ingest", "fanout", "dispatch", "africastalking", "events", "reach"),
            *("imap", "import", "console", "crypto", "soak", "scaleout", "webhooks_out", "scale"),
        ],
        action="append",
    )
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument(
        "--scale",
        choices=sorted(console.seed_scale.SCALES),
        default="full",
        help="console: the seeded database (small: a tenth, for a quick run)",
    )
    parser.add_argument("--soak-cycles", type=int, default=soak.CYCLES, help="soak: kill -9 cycles")
    parser.add_argument(
        "--scale-sizes",
        type=_sizes,
        default=scale.SIZES,
        help="scale: the database sizes, as multiples of 10k supporters (default 1,10,100)",
    )
    parser.add_argument(
        "--scale-databases",
        type=_databases,
        default=list(scale.DATABASES),
        help="scale: sqlite, postgresql or both (default)",
    )
    parser.add_argument(
        "--scale-samples", type=int, default=scale.SAMPLES, help="scale: requests per endpoint"
    )
    parser.add_argument("--sse-path", help="console: the live-update stream (else found)")
    args = parser.parse_args()
    with_console = not args.only or "console" in args.only
    # The console's share comes on top of what the other benchmarks had, so their figures
    # (fan-out sizes in particular) do not depend on whether it runs.
    reserve = CONSOLE_SECONDS if with_console else 0.0
    deadline = time.monotonic() + (args.budget or BUDGET + reserve)
    report = Report(history=list(HISTORY))
    print(f"load generator: {'wrk' if have_wrk() else 'httpx (wrk not installed)'}", flush=True)
    steps: list[tuple[str, Callable[[Path], None]]] = [
        ("ingest", lambda work: ingest.run(report, work)),
        ("fanout", lambda work: fanout.run(report, work, deadline - 150 - reserve)),
        ("dispatch", lambda work: dispatch.run(report, work)),
        ("dispatch", lambda work: signal_dispatch.run(report, work)),
        ("dispatch", lambda work: channel_dispatch.run(report, work)),
        ("reach", lambda work: reach.run(report, work)),
        ("africastalking", lambda work: africastalking.run(report, work)),
        ("events", lambda work: events.run(report, work)),
        ("imap", lambda work: imap.run(report, work)),
        ("import", lambda work: import_csv.run(report, work)),
        ("webhooks_out", lambda work: webhooks_out.run(report, work)),
        ("console", lambda work: console.run(report, work, args.scale, args.sse_path)),
        ("soak", lambda work: soak.run(report, work, args.soak_cycles)),
        ("crypto", lambda work: crypto.run(report, work)),
        ("scaleout", lambda work: scaleout.run(report, work)),
        (
            "scale",
            lambda work: scale.run(
                report,
                work,
                args.scale_sizes,
                args.scale_samples,
                write=not args.no_write,
                databases=args.scale_databases,
            ),
        ),
    ]
    failed = []
    with tempfile.TemporaryDirectory(prefix="rallypoint-bench-") as tmp:
        for name, step in steps:
            if args.only and name not in args.only:
                continue
            if name in ("soak", "scaleout", "scale") and not args.only:
                continue  # minutes of kill -9 cycles, processes or seeding: only when asked
            if time.monotonic() > deadline:
                report.notes.append(f"{name}: not run, the time budget was spent")
                continue
            print(f"== {name}", flush=True)
            work = Path(tmp) / name
            work.mkdir(exist_ok=True)  # "dispatch" runs twice: Twilio, then Signal
            try:
                step(work)
            except Exception:  # one benchmark's failure must not hide the others
                failed.append(name)
                report.notes.append(f"{name}: failed: {traceback.format_exc(limit=3)}")
                traceback.print_exc()
    for note in report.notes:  # what each benchmark found, written or not
        print(f"note: {note}", flush=True)
    if not args.no_write and args.only != ["scale"]:  # scale writes its own section
        plot = write_plot(report, ROOT / "bench" / "scaling.png")
        write_markdown(report, ROOT / "BENCHMARKS.md", plot)
        print(f"wrote {ROOT / 'BENCHMARKS.md'}", flush=True)
    return 1 if failed else 0


def _databases(text: str) -> list[str]:
    names = [d for d in text.split(",") if d]
    if not names or any(d not in scale.DATABASES for d in names):
        raise argparse.ArgumentTypeError("databases: sqlite, postgresql or sqlite,postgresql")
    return names


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(sorted({int(part) for part in text.split(",")}))
    except ValueError:
        raise argparse.ArgumentTypeError("sizes are whole numbers, e.g. 1,10") from None
    if not sizes or min(sizes) < 1 or max(sizes) > 100:
        raise argparse.ArgumentTypeError("sizes are between 1 and 100, e.g. 1,10")
    return sizes


if __name__ == "__main__":
    raise SystemExit(main())
