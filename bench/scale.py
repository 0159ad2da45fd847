"""The data-scale benchmark (issue 18): the real app on seeded databases at 1x, 10x and
100x of 10,000 supporters / 100,000 messages (bench/seed_scale.py: 100x is 1,000,000
supporters in 200 teams, 10,000,000 messages, 1,000 announcements, one of them to 500,000,
10,000 polls and events), on SQLite and PostgreSQL. One `rallypoint serve` process per
database; p50/p95/p99 of sequential requests (after warm-ups) to every list, search,
report and detail endpoint of the REST API and the console's pages, each size's figures
beside the 1x figure of the same run (the growth ratio), against the issue's targets at
the largest size run. Writes bench/scale_growth.png and its section of BENCHMARKS.md.

A feature that keeps derived rows (counters, a search index) adds its set-based fill to
BACKFILLS, so the bulk-loaded databases hold what the app would have written."""

from __future__ import annotations

import re
import shutil
import sqlite3
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench import scale_pg, seed, seed_pg, seed_scale
from bench.console import sign_in
from bench.ingest import serve, serve_env
from bench.report import Figure, Report
from bench.seed_scale import Backfill
from bench.servers import ROOT, free_port, running

# Set-based fills of derived tables, run after the base rows are loaded (see
# seed_scale.Backfill). The lead extends this list when features keeping such rows merge.
BACKFILLS: list[Backfill] = []

SIZES = (1, 10, 100)
DATABASES = ("sqlite", "postgresql")
SAMPLES = 40
WARM_UPS = 2
EXPORT_SAMPLES = 3
ENDPOINT_SECONDS = 20.0  # fewer samples for an endpoint slower than this (see measure)
REQUEST_SECONDS = 180.0  # a request with no answer by then is reported as timed out
TARGETS = {"list": 50.0, "detail": 50.0, "report": 50.0, "search": 100.0, "page": 150.0}
PLOT = ROOT / "bench" / "scale_growth.png"
BEGIN, END = "<!-- scale:begin -->", "<!-- scale:end -->"


@dataclass(frozen=True)
class Endpoint:
    name: str
    path: str  # {placeholders} filled from the seeded data (see _values)
    kind: str  # list, detail, search, report, export, page (a console page), baseline


ENDPOINTS = (
    # The floor of this server on this machine in the same run: its lightest GET.
    Endpoint("healthz (baseline)", "/healthz", "baseline"),
    # Not a request: from starting `serve` to its first answer (SQLite: the migration
    # check at start-up reads the whole file).
    Endpoint("serve start-up", "", "startup"),
    Endpoint("supporters", "/api/v1/supporters?limit=50", "list"),
    Endpoint("supporters of a team", "/api/v1/supporters?team=1&limit=50", "list"),
    Endpoint("supporter search, name", "/api/v1/supporters?q={name}&limit=50", "search"),
    Endpoint("supporter search, phone digits", "/api/v1/supporters?q={digits}&limit=50", "search"),
    Endpoint("supporter", "/api/v1/supporters/{supporter}", "detail"),
    Endpoint("supporter's timeline", "/api/v1/supporters/{supporter}/events", "detail"),
    Endpoint("supporters CSV export", "/api/v1/supporters/export", "export"),
    Endpoint("conversations", "/api/v1/conversations?limit=50", "list"),
    Endpoint("conversations, unread", "/api/v1/conversations?unread=true&limit=50", "list"),
    Endpoint("conversations, open", "/api/v1/conversations?status=open&limit=50", "list"),
    Endpoint("conversations of a team", "/api/v1/conversations?team=1&limit=50", "list"),
    Endpoint("conversation search, name", "/api/v1/conversations?q={name}&limit=50", "search"),
    Endpoint(
        "thread messages ({length})", "/api/v1/conversations/{thread}/messages?limit=50", "list"
    ),
    Endpoint("message", "/api/v1/messages/{message}", "detail"),
    Endpoint("announcements", "/api/v1/announcements?limit=50", "list"),
    Endpoint("announcement report ({wide})", "/api/v1/announcements/1", "report"),
    Endpoint("announcement recipients", "/api/v1/announcements/1/recipients?limit=50", "list"),
    Endpoint("polls", "/api/v1/polls?limit=50", "list"),
    Endpoint("poll results ({answers})", "/api/v1/polls/1", "report"),
    Endpoint("events", "/api/v1/events?limit=50", "list"),
    Endpoint("event", "/api/v1/events/1", "detail"),
    Endpoint("event RSVPs", "/api/v1/events/1/rsvps?limit=50", "list"),
    Endpoint("check-ins", "/api/v1/checkins", "list"),
    Endpoint("check-ins due (team, 14 days)", "/api/v1/checkins/due?team=1&days=14", "report"),
    Endpoint("teams", "/api/v1/teams", "list"),
    Endpoint("team stats", "/api/v1/teams/1/stats", "report"),
    Endpoint("custom fields", "/api/v1/fields", "list"),
    Endpoint("audit log", "/api/v1/audit?limit=50", "list"),
    Endpoint("webhook deliveries", "/api/v1/webhooks/1/deliveries?limit=50", "list"),
    Endpoint("metrics (the app's counts)", "/metrics", "report"),
    Endpoint("console inbox", "/console/", "page"),
    Endpoint("console inbox, unread", "/console/?unread=1", "page"),
    Endpoint("console thread", "/console/conversations/{thread}", "page"),
    Endpoint("console supporter search, name", "/console/supporters?q={name}", "page"),
    Endpoint("console supporter search, digits", "/console/supporters?q={digits}", "page"),
    Endpoint("console supporter", "/console/supporters/{supporter}", "page"),
    Endpoint("console announcement", "/console/announcements/1", "page"),
    Endpoint("console check-ins due", "/console/checkins/due", "page"),
)


@dataclass
class Timing:
    status: int
    p50: float = 0.0
    p95: float = 0.0
    p99: float = 0.0
    samples: int = 0
    size: int = 0


@dataclass
class Results:
    # (backend, endpoint name) -> size factor -> timing
    timings: dict[tuple[str, str], dict[int, Timing]] = field(default_factory=dict)
    builds: list[str] = field(default_factory=list)


def _get(client: httpx.Client, path: str, headers: dict[str, str]) -> tuple[int, int, float]:
    """One GET read to its last byte: status (0: no answer in REQUEST_SECONDS), bytes,
    milliseconds."""
    start = time.perf_counter()
    size = 0
    try:
        with client.stream("GET", path, headers=headers) as answer:
            for part in answer.iter_raw():
                size += len(part)
    except httpx.TimeoutException:
        return 0, 0, (time.perf_counter() - start) * 1000
    return answer.status_code, size, (time.perf_counter() - start) * 1000


def measure(client: httpx.Client, path: str, samples: int, headers: dict[str, str]) -> Timing:
    """`samples` sequential GETs after the warm-ups; past ENDPOINT_SECONDS it stops at 5
    samples, or at 1 when one request takes over a fifth of that."""
    started = time.monotonic()
    for _ in range(WARM_UPS):
        status, _, ms = _get(client, path, headers)
        if status != 200:
            return Timing(status)
        if ms > 1000 * ENDPOINT_SECONDS / 5:
            break  # a slow one: its warm-up is enough
    enough = 1 if time.monotonic() - started > ENDPOINT_SECONDS / 5 else 5
    times: list[float] = []
    size = 0
    while len(times) < samples:
        status, size, ms = _get(client, path, headers)
        if status != 200:
            return Timing(status)
        times.append(ms)
        if time.monotonic() - started > ENDPOINT_SECONDS and len(times) >= enough:
            break
    times.sort()
    pick = lambda q: times[min(len(times) - 1, round(q * (len(times) - 1)))]  # noqa: E731
    return Timing(200, statistics.median(times), pick(0.95), pick(0.99), len(times), size)


def _values(db: Path, scale: seed_scale.Scale) -> dict[str, str]:
    thread = seed_scale.long_threads(db, scale.long_length)[0]
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        length, message = conn.execute(
            "SELECT count(*), min(id) FROM messages WHERE conversation_id = ?", (thread,)
        ).fetchone()
        wide, answers = (
            conn.execute("SELECT recipients FROM announcements WHERE id = 1").fetchone()[0],
            conn.execute("SELECT count(*) FROM poll_answers WHERE poll_id = 1").fetchone()[0],
        )
    return {
        "thread": str(thread),
        "length": f"{length:,} messages",
        "message": str(message),
        "name": seed_scale.LAST[0],
        "digits": seed.phone(scale.supporters // 3)[-7:],
        "supporter": str(scale.supporters // 2),
        "wide": f"{wide:,} recipients",
        "answers": f"{answers:,} answers",
    }


def _label(endpoint: Endpoint) -> str:
    """The endpoint's name without the size-dependent parts."""
    return re.sub(r" \(\{[a-z]+\}\)", "", endpoint.name)


def _measure_all(
    url: str, scale: seed_scale.Scale, values: dict[str, str], samples: int
) -> dict[str, Timing]:
    out: dict[str, Timing] = {}
    key = {"authorization": f"Bearer {seed_scale.api_key('admin', scale)}"}
    with httpx.Client(base_url=url, timeout=REQUEST_SECONDS) as client:
        sign_in(client, "admin")
        for endpoint in ENDPOINTS:
            if endpoint.kind == "startup":
                continue
            path = endpoint.path.format(**values)
            n = EXPORT_SAMPLES if endpoint.kind == "export" else samples
            timing = measure(client, path, n, {} if endpoint.kind == "page" else key)
            out[_label(endpoint)] = timing
            shown = (
                f"p50 {timing.p50:8.1f}  p95 {timing.p95:8.1f}  p99 {timing.p99:8.1f} ms"
                f"  ({timing.samples})"
                if timing.status == 200
                else _failed(timing)
            )
            print(f"    {endpoint.name.format(**values):<44} {shown}", flush=True)
    return out


def run_size(
    results: Results, work: Path, factor: int, backends: Sequence[str], samples: int
) -> None:
    scale = seed_scale.data_scale(factor)
    started = time.monotonic()
    cached = seed_scale.ensure(scale, BACKFILLS, prefix="scale")
    results.builds.append(f"SQLite {factor}x: {_took(started)} ({_mib(cached)} MiB)")
    values = _values(cached, scale)
    for backend in backends:
        print(f"  {backend} {factor}x", flush=True)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        db = work / f"scale-{factor}x.db"
        # Only the HTTP side: no check-in or reminder scheduler sending to the seeded teams.
        env = {**serve_env(db, port), "RALLYPOINT_RUN_CHECKINS": "false"}
        if backend == "sqlite":
            shutil.copyfile(cached, db)  # the app writes (sessions, key use): keep the cache
        else:
            started = time.monotonic()
            name = scale_pg.ensure(
                factor, cached, seed_scale.fingerprint(scale, BACKFILLS), BACKFILLS
            )
            results.builds.append(f"PostgreSQL {factor}x: {_took(started)}")
            env["RALLYPOINT_DATABASE_URL"] = scale_pg.url(scale_pg.clone(name))
        try:
            log = work / f"serve-{backend}-{factor}.log"
            try:
                begun = time.monotonic()
                # Start-up grows with the file on SQLite (see ENDPOINTS): 20 minutes at 100x.
                with running(
                    serve(), env, url + "/healthz", log, ready_timeout=12.0 * factor + 180
                ):
                    up = (time.monotonic() - begun) * 1000
                    print(f"    serve start-up {up / 1000:.1f} s", flush=True)
                    timings = _measure_all(url, scale, values, samples)
                    timings["serve start-up"] = Timing(200, up, up, up, 1)
            except Exception:
                print(log.read_text()[-3000:], flush=True)
                raise
        finally:
            if backend == "sqlite":
                db.unlink(missing_ok=True)
            else:
                scale_pg.drop_clone(name)
        for label, timing in timings.items():
            results.timings.setdefault((backend, label), {})[factor] = timing


def _failed(timing: Timing) -> str:
    if timing.status == 0:
        return f"no answer in {REQUEST_SECONDS:.0f} s"
    return f"answered {timing.status}"


def _took(started: float) -> str:
    seconds = time.monotonic() - started
    return "cached" if seconds < 5 else f"built in {seconds:.0f} s"


def _mib(path: Path) -> int:
    return path.stat().st_size // (1 << 20)


def run(
    report: Report,
    work: Path,
    sizes: Sequence[int] = SIZES,
    samples: int = SAMPLES,
    write: bool = True,
    databases: Sequence[str] = DATABASES,
) -> None:
    backends = [d for d in databases if d == "sqlite" or seed_pg.available()]
    results = Results()
    for factor in sizes:
        run_size(results, work, factor, backends, samples)
    rows = table(results, list(sizes))
    print("\n".join(rows), flush=True)
    _figures(report, results, list(sizes))
    if "postgresql" in databases and not seed_pg.available():
        report.notes.append("scale: PostgreSQL not reachable on 127.0.0.1:5432; SQLite only")
    if write:
        plot = write_plot(results, list(sizes), PLOT)
        write_section(ROOT / "BENCHMARKS.md", rows, results, samples, plot)


def _kind(label: str) -> str:
    return next(e.kind for e in ENDPOINTS if _label(e) == label)


def _verdict(label: str, by_size: dict[int, Timing], largest: int) -> tuple[str, bool | None]:
    target = TARGETS.get(_kind(label))
    top = by_size.get(largest)
    if target is None or top is None or top.status != 200:
        return "-", None
    return f"p95 <= {target:.0f} ms", top.p95 <= target


def table(results: Results, sizes: list[int]) -> list[str]:
    """A Markdown table: every endpoint on each backend, p50/p95/p99 per size, the growth
    (largest p95 / 1x p95) and the target at the largest size."""
    largest = max(sizes)
    head = " | ".join(f"{s}x p50 / p95 / p99 ms" for s in sizes)
    rows = [
        f"| endpoint | database | {head} | growth ({largest}x/1x p95) | target ({largest}x)"
        " | result |",
        "|---|---|" + "---|" * len(sizes) + "---|---|---|",
    ]
    for (backend, label), by_size in results.timings.items():
        cells = []
        for s in sizes:
            t = by_size.get(s)
            if t is None:
                cells.append("-")
            elif t.status != 200:
                cells.append(_failed(t))
            else:
                cells.append(f"{t.p50:.1f} / {t.p95:.1f} / {t.p99:.1f}")
        growth = _growth(by_size, sizes)
        target, passed = _verdict(label, by_size, largest)
        verdict = {True: "met", False: "**not met**", None: "-"}[passed]
        rows.append(
            f"| {label} | {backend} | {' | '.join(cells)} | {growth} | {target} | {verdict} |"
        )
    return rows


def _growth(by_size: dict[int, Timing], sizes: list[int]) -> str:
    base, top = by_size.get(min(sizes)), by_size.get(max(sizes))
    if base is None or top is None or base.status != 200 or top.status != 200 or not base.p95:
        return "-"
    return f"{top.p95 / base.p95:.1f}x"


def _figures(report: Report, results: Results, sizes: list[int]) -> None:
    largest, smallest = max(sizes), min(sizes)
    for (backend, label), by_size in results.timings.items():
        top, base = by_size.get(largest), by_size.get(smallest)
        if top is None or top.status != 200:
            failed = _failed(top) if top is not None else "not measured"
            report.notes.append(f"scale: {backend} {label} at {largest}x: {failed}")
            continue
        target, passed = _verdict(label, by_size, largest)
        report.add(
            Figure(
                "scale",
                f"{backend} {label} p95 at {largest}x",
                top.p95,
                "ms",
                base.p95 if base is not None and base.status == 200 else None,
                f"{smallest}x, same run",
                target if passed is not None else "",
                passed,
            )
        )


def write_plot(results: Results, sizes: list[int], path: Path) -> Path | None:
    """p95 against the size, one panel per database, one line per endpoint (log-log)."""
    if len(sizes) < 2:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    backends = sorted({b for b, _ in results.timings}, key=lambda b: b != "sqlite")
    fig, axes = plt.subplots(1, len(backends), figsize=(9 * len(backends), 7), squeeze=False)
    for ax, backend in zip(axes[0], backends, strict=True):
        for (b, label), by_size in results.timings.items():
            points = [(s, t.p95) for s, t in sorted(by_size.items()) if t.status == 200]
            if b != backend or len(points) < 2:
                continue
            xs, ys = zip(*points, strict=True)
            style = "--" if _kind(label) == "page" else "-"
            ax.plot(xs, ys, style, marker="o", label=label)
        ax.axhline(50, color="grey", linewidth=0.8)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(sizes, [f"{s}x" for s in sizes])
        ax.set_title(f"{backend}: p95 by data size (1x = 10k supporters, 100k messages)")
        ax.set_xlabel("data size")
        ax.set_ylabel("p95 ms")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def write_section(
    path: Path, rows: list[str], results: Results, samples: int, plot: Path | None
) -> None:
    """This benchmark's section of BENCHMARKS.md, between its markers (replaced on each run;
    kept by bench/report.py when the other benchmarks rewrite the file)."""
    from bench.report import machine

    section = [
        BEGIN,
        "## Data scale (`scripts/bench --only scale`)",
        "",
        f"Run {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC on {machine()}. One"
        " `rallypoint serve` per database, an admin API key (console pages: an admin signed"
        f" in through the form); {samples} sequential requests per endpoint after"
        f" {WARM_UPS} warm-ups ({EXPORT_SAMPLES} for the CSV export, timed to its last byte;"
        f" fewer past {ENDPOINT_SECONDS:.0f} s: at least 5, or 1 after a warm-up over"
        f" {ENDPOINT_SECONDS / 5:.0f} s). 1x = 10,000 supporters,"
        " 100,000 messages, 10 announcements (one to half of everyone), 100 polls and events;"
        " 100x = 1,000,000 supporters in 200 teams, 10,000,000 messages, 1,000"
        " announcements (one to 500,000), 10,000 polls and events (bench/seed_scale.py)."
        " Growth is the largest size's p95 over the 1x p95 of the same run; `healthz` (the"
        " app's lightest GET) is the floor of the server on the machine at that moment.",
        "",
        *rows,
        "",
        "Databases: " + "; ".join(results.builds) + ".",
        "",
        *([f"![p95 by data size]({plot.name})", ""] if plot else []),
        END,
    ]
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if BEGIN in text and END in text:
        before, rest = text.split(BEGIN, 1)
        text = before + "\n".join(section) + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + "\n".join(section) + "\n"
    path.write_text(text)
