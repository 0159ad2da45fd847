"""Load generation in a separate process: wrk when installed, else an httpx client.

Both replay pre-signed requests (`<signature> <body>` lines), each sent once, over
`connections` keep-alive connections for `seconds`, and count the 200 answers.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.wrk import have_wrk, run_wrk


@dataclass
class LoadResult:
    requests_per_second: float
    ok: int
    bad: int
    p50_ms: float
    p99_ms: float
    tool: str


def run_load(
    url: str, path: str, requests: Path, seconds: int, connections: int, work: Path
) -> LoadResult:
    if have_wrk():
        r = run_wrk(url, path, requests, seconds=seconds, connections=connections, workdir=work)
        return LoadResult(r.requests_per_second, r.ok, r.bad, r.p50_ms, r.p99_ms, "wrk")
    args = [sys.executable, "-m", "bench.load", url + path, str(requests)]
    args += [str(seconds), str(connections)]
    out = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 120, check=True)
    data = json.loads(out.stdout.strip().splitlines()[-1])
    return LoadResult(**data, tool="httpx")


async def _client(url: str, lines: list[str], seconds: float, connections: int) -> dict:
    import httpx

    latencies: list[float] = []
    counts = {"ok": 0, "bad": 0}
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    deadline = time.monotonic() + seconds
    queue = iter(lines)

    async def worker(client: httpx.AsyncClient) -> None:
        for line in queue:
            if time.monotonic() >= deadline:
                return
            signature, body = line.rstrip("\n").split(" ", 1)
            headers = {
                "content-type": "application/x-www-form-urlencoded",
                "x-twilio-signature": signature,
            }
            start = time.perf_counter()
            try:
                answer = await client.post(url, content=body, headers=headers)
                counts["ok" if answer.status_code == 200 else "bad"] += 1
            except httpx.HTTPError:
                counts["bad"] += 1
            latencies.append((time.perf_counter() - start) * 1000)

    started = time.monotonic()
    async with httpx.AsyncClient(limits=limits, timeout=5.0) as client:
        await asyncio.gather(*(worker(client) for _ in range(connections)))
    elapsed = time.monotonic() - started
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(len(latencies) * p))] if latencies else 0.0

    return {
        "requests_per_second": (counts["ok"] + counts["bad"]) / elapsed,
        "ok": counts["ok"],
        "bad": counts["bad"],
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
    }


if __name__ == "__main__":
    target, file, secs, conns = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
    lines = Path(file).read_text().splitlines()
    print(json.dumps(asyncio.run(_client(target, lines, secs, conns))))
