"""The console at a campaign's scale (issue 12, "Performance"): on a copy of the seeded
database (bench/seed_scale.py: 100,000 supporters, 1,000,000 messages), one `rallypoint
serve` process, signed in through the real form, sequential requests to each console
page beside the REST call that returns the same data, in the same run: p50, p95 and bytes.
Then the cost of 200 open live-update (SSE) streams to the ingest rate, with and without
them against the same server. A page or stream the app does not have yet (404) is
reported "not available", not as a failure."""

from __future__ import annotations

import html
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench import seed, seed_scale, twilio_forms
from bench.ingest import CONNECTIONS, serve, serve_env
from bench.load import run_load
from bench.report import Figure, Report
from bench.servers import free_port, running

TARGET_MS = 150.0
SSE_STREAMS = 200
SSE_RATIO = 0.90


@dataclass(frozen=True)
class Page:
    """A console page and the REST call with the same data; `{thread}`, `{name}` and
    `{digits}` are filled from the seeded data."""

    name: str
    page: str
    rest: str


PAGES = (
    Page("inbox", "/console/", "/api/v1/conversations?limit=50"),
    Page("inbox, unread", "/console/?unread=1", "/api/v1/conversations?unread=true&limit=50"),
    Page(
        "thread of {length} messages",
        "/console/conversations/{thread}",
        "/api/v1/conversations/{thread}/messages?limit=500",
    ),
    Page(
        "supporter search, name",
        "/console/supporters?q={name}",
        "/api/v1/supporters?q={name}&limit=50",
    ),
    Page(
        "supporter search, phone digits",
        "/console/supporters?q={digits}",
        "/api/v1/supporters?q={digits}&limit=50",
    ),
)


@dataclass
class Timing:
    p50: float
    p95: float
    size: int
    status: int


def measure(client: httpx.Client, path: str, samples: int, headers: dict[str, str]) -> Timing:
    """Sequential GETs after two warm-up requests: p50/p95 in ms, bytes of the last body."""
    answer = client.get(path, headers=headers)
    if answer.status_code != 200:
        return Timing(0.0, 0.0, 0, answer.status_code)
    client.get(path, headers=headers)
    times = []
    for _ in range(samples):
        start = time.perf_counter()
        answer = client.get(path, headers=headers)
        times.append((time.perf_counter() - start) * 1000)
        answer.raise_for_status()
    times.sort()
    return Timing(
        statistics.median(times), times[int(0.95 * (len(times) - 1))], len(answer.content), 200
    )


def sign_in(client: httpx.Client, role: str = "coordinator") -> str:
    """Through the real form (double-submit CSRF token); the session cookie header."""
    form = client.get("/console/sign-in")
    form.raise_for_status()
    token = re.search(r'name="csrf_token"\s+value="([^"]+)"', form.text)
    if token is None:
        raise RuntimeError("no CSRF token in the sign-in form")
    answer = client.post(
        "/console/sign-in",
        data={
            "email": seed_scale.email(role),
            "password": seed_scale.PASSWORD,
            "csrf_token": token.group(1),
            "next": "/console/",
        },
    )
    if answer.status_code != 303:
        raise RuntimeError(f"sign-in answered {answer.status_code}")
    return "; ".join(f"{k}={v}" for k, v in client.cookies.items())


def _walk(routes: list[Any], prefix: str = "") -> Iterator[str]:
    """Every GET path in a route table, through included routers (kept nested by newer
    FastAPI versions)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            context = getattr(route, "include_context", None)
            yield from _walk(inner.routes, prefix + getattr(context, "prefix", ""))
        elif "GET" in (getattr(route, "methods", None) or ()):
            yield prefix + route.path


def sse_candidates(client: httpx.Client) -> list[str]:
    """Where the live stream may be: the URLs the inbox page points at (a browser's
    EventSource takes one of them) and the console's GET routes in the app's own route
    table; `find_sse` probes them for text/event-stream."""
    from gateway.app import create_app
    from gateway.settings import Settings

    inbox = client.get("/console/").text
    found = [html.unescape(u) for u in re.findall(r'="(/console/[^"]*)"', inbox)]
    app = create_app(Settings(_env_file=None, database_url="sqlite:///:memory:"))  # type: ignore[call-arg]
    found += [p for p in _walk(app.routes) if p.startswith("/console/") and "{" not in p]
    live = [p for p in dict.fromkeys(found) if "/static/" not in p]
    # Likely names first: fewer pages rendered before the stream is found.
    return sorted(live, key=lambda p: not any(w in p for w in ("live", "event", "stream", "sse")))


def find_sse(client: httpx.Client, candidates: list[str]) -> str | None:
    for path in candidates:
        try:
            with client.stream("GET", path, timeout=5.0) as answer:
                kind = answer.headers.get("content-type", "")
                if answer.status_code == 200 and kind.startswith("text/event-stream"):
                    return path
        except httpx.HTTPError:
            continue
    return None


def run(report: Report, work: Path, scale: str = "full", sse_path: str | None = None) -> None:
    sizes = seed_scale.SCALES[scale]
    cached = seed_scale.ensure(sizes)
    db = work / "console.db"
    shutil.copyfile(cached, db)
    threads = seed_scale.long_threads(db, 500)
    thread = threads[0]
    length = seed.count(db, f"SELECT count(*) FROM messages WHERE conversation_id = {thread}")
    values = {
        "thread": str(thread),
        "length": f"{length:,}",
        "name": seed_scale.LAST[0],
        "digits": seed.phone(sizes.supporters // 3)[-7:],
    }
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    samples = 60
    label = f"{sizes.supporters:,} supporters, {sizes.messages:,} messages"
    key = {"authorization": f"Bearer {seed_scale.api_key('coordinator', sizes)}"}
    with running(serve(), serve_env(db, port), url + "/healthz", work / "serve.log"):
        with httpx.Client(base_url=url, timeout=30.0) as client:
            cookie = sign_in(client)
            for spec in PAGES:
                name = spec.name.format(**values)
                page = measure(client, spec.page.format(**values), samples, {})
                if page.status == 404:
                    report.notes.append(f"console: {name} ({spec.page}): not available (404)")
                    print(f"  {name}: not available (404)", flush=True)
                    continue
                if page.status != 200:
                    raise RuntimeError(f"{spec.page} answered {page.status}")
                rest = measure(client, spec.rest.format(**values), samples, key)
                _page_figures(report, name, page, rest)
            candidates = [sse_path] if sse_path else sse_candidates(client)
            stream = find_sse(client, candidates)
        if stream is None:
            report.notes.append("console: live updates (SSE): not available (no event stream)")
            print("  SSE: not available", flush=True)
        else:
            _sse_impact(report, work, url, stream, cookie)
    report.notes.append(
        f"console: {label} (bench/seed_scale.py, scale {scale}), SQLite, one `serve` process,"
        f" a coordinator signed in through the form; {samples} sequential requests per page"
        " after two warm-ups, beside the REST call that answers the same rows (an API key of"
        " the same role) in the same run."
    )


def _page_figures(report: Report, name: str, page: Timing, rest: Timing) -> None:
    report.add(Figure("console", f"{name} p50", page.p50, "ms", rest.p50, "REST"))
    report.add(
        Figure(
            "console",
            f"{name} p95",
            page.p95,
            "ms",
            rest.p95,
            "REST",
            f"<= {TARGET_MS:.0f} ms",
            page.p95 <= TARGET_MS,
        )
    )
    report.add(Figure("console", f"{name} bytes", page.size, "B", rest.size, "REST JSON"))


def _sse_impact(report: Report, work: Path, url: str, path: str, cookie: str) -> None:
    """Inbound webhooks against the same server, alternating without and with
    SSE_STREAMS streams open; the median of each."""
    rounds, seconds, volume = 2, 6, 40_000
    without: list[float] = []
    with_sse: list[float] = []
    events = 0
    for r in range(rounds * 2):
        forms = [twilio_forms.inbound_form(10_000_000 + r * volume + i) for i in range(volume)]
        file = twilio_forms.write_signed(forms, url + "/webhooks/twilio", work / f"in-{r}.txt")
        if r % 2 == 0:
            result = run_load(url, "/webhooks/twilio", file, seconds, CONNECTIONS, work)
            without.append(result.requests_per_second)
            continue
        args = [sys.executable, "-m", "bench.sse", url, path, cookie, str(SSE_STREAMS)]
        with subprocess.Popen(  # noqa: S603
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        ) as clients:
            assert clients.stdin is not None and clients.stdout is not None
            ready = clients.stdout.readline()
            if not ready.startswith("ready"):
                raise RuntimeError(f"SSE clients: {ready!r}")
            result = run_load(url, "/webhooks/twilio", file, seconds, CONNECTIONS, work)
            clients.stdin.close()
            events += int(clients.stdout.readline().split()[-1] or 0)
            clients.wait(timeout=30)
        with_sse.append(result.requests_per_second)
    base, loaded = statistics.median(without), statistics.median(with_sse)
    report.add(
        Figure(
            "console",
            f"ingest with {SSE_STREAMS} SSE streams open",
            loaded,
            "req/s",
            base,
            "no streams, same server",
            f">= {SSE_RATIO:.2f} of baseline",
            loaded >= SSE_RATIO * base,
            note=f"{path}; {events:,} events read by the streams",
        )
    )
