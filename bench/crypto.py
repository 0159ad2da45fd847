"""Benchmark: encryption at rest (RALLYPOINT_ENCRYPTION_KEYS) against plaintext, same run.

1. Inbound SMS webhooks into `serve` with and without keys, rounds alternating, the
   median round of each (target: encrypted >= 0.9 of plaintext).
2. Fan-out to 100,000 supporters with and without keys, each in a fresh subprocess
   (target: encrypted <= 1.2x plaintext). The encrypted run's supporters are seeded in
   plaintext and then sealed by `rotate_encryption` (its rate is reported too).
3. Key rotation of the fan-out's messages to a new key, in rows/s.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
from pathlib import Path

from bench import fanout, seed
from bench.ingest import CONNECTIONS, serve, serve_env
from bench.load import LoadResult, run_load
from bench.report import Figure, Report
from bench.servers import ROOT, free_port, running
from bench.twilio_forms import inbound_form, write_signed

KEY = base64.b64encode(bytes(range(32))).decode()
NEW_KEY = base64.b64encode(bytes(range(100, 132))).decode()
FANOUT_SIZE = 100_000


async def _rotate(db: Path, keys: str) -> tuple[float, int]:
    from storage.db import make_engine
    from storage.rotation import rotate_encryption

    engine = make_engine(f"sqlite:///{db}")
    try:
        report = await rotate_encryption(engine, keys, batch=1000)
    finally:
        await engine.dispose()
    return report.seconds, report.rows_read


def child(db: Path, size: int, encrypted: bool) -> dict[str, float]:
    seed.migrate(db)
    seed.seed_supporters(db, size)
    out: dict[str, float] = {}
    if encrypted:
        os.environ["RALLYPOINT_ENCRYPTION_KEYS"] = KEY
        # Also installs the keys for this process's sealed columns (as `serve` does).
        out["seal_seconds"], out["seal_rows"] = asyncio.run(_rotate(db, KEY))
    seconds, _ = asyncio.run(fanout.fan_out_timed(f"sqlite:///{db}"))
    out["seconds"] = seconds
    if encrypted:
        messages = seed.count(db, "SELECT count(*) FROM messages")
        rotate_seconds, rows = asyncio.run(_rotate(db, f"{NEW_KEY},{KEY}"))
        out.update(rotate_seconds=rotate_seconds, rotate_rows=rows, messages=messages)
    return out


def _fanout(work: Path, encrypted: bool) -> dict[str, float]:
    db = work / f"crypto-fanout-{int(encrypted)}.db"
    for old in work.glob(f"{db.name}*"):
        old.unlink()
    env = {k: v for k, v in os.environ.items() if k != "RALLYPOINT_ENCRYPTION_KEYS"}
    proc = subprocess.run(
        [sys.executable, "-m", "bench.crypto", str(db), str(FANOUT_SIZE), str(int(encrypted))],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
        check=True,
        env=env,
    )
    data: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return data


def _ingest(work: Path, seconds: int, volume: int, rounds: int) -> tuple[LoadResult, LoadResult]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    forms = write_signed(
        [inbound_form(i) for i in range(volume)], url + "/webhooks/twilio", work / "in.txt"
    )
    runs: dict[bool, list[LoadResult]] = {False: [], True: []}
    for r in range(rounds):
        for encrypted in (False, True):
            db = work / f"ingest-{r}-{int(encrypted)}.db"
            seed.migrate(db)
            env = serve_env(db, port)
            if encrypted:
                env["RALLYPOINT_ENCRYPTION_KEYS"] = KEY
            log = work / f"serve-{r}-{int(encrypted)}.log"
            with running(serve(), env, url + "/healthz", log):
                result = run_load(url, "/webhooks/twilio", forms, seconds, CONNECTIONS, work)
            runs[encrypted].append(result)
            print(
                f"  round {r + 1} {'encrypted' if encrypted else 'plaintext'}:"
                f" {result.requests_per_second:,.0f} req/s",
                flush=True,
            )
    median = {
        k: sorted(v, key=lambda x: x.requests_per_second)[len(v) // 2] for k, v in runs.items()
    }
    return median[True], median[False]


def run(report: Report, work: Path, seconds: int = 6, volume: int = 100_000) -> None:
    encrypted, plain = _ingest(work, seconds, volume, rounds=3)
    ratio = encrypted.requests_per_second / plain.requests_per_second
    report.add(
        Figure(
            "crypto",
            f"ingest with encryption at rest, {CONNECTIONS} connections (median of 3)",
            encrypted.requests_per_second,
            "req/s",
            plain.requests_per_second,
            "same, without keys",
            ">= 0.90 of baseline",
            ratio >= 0.9,
        )
    )
    report.add(Figure("crypto", "ingest p99, encrypted", encrypted.p99_ms, "ms", plain.p99_ms))
    off = _fanout(work, encrypted=False)
    on = _fanout(work, encrypted=True)
    report.add(
        Figure(
            "crypto",
            f"fan-out to {FANOUT_SIZE:,} with encryption at rest",
            on["seconds"],
            "s",
            off["seconds"],
            "same, without keys",
            "<= 1.2x baseline",
            on["seconds"] <= 1.2 * off["seconds"],
        )
    )
    report.add(
        Figure(
            "crypto",
            "rotate-encryption of the fan-out's rows to a new key",
            on["rotate_rows"] / on["rotate_seconds"],
            "rows/s",
            note=f"{int(on['rotate_rows']):,} rows checked (messages: {int(on['messages']):,},"
            f" plus supporters and addresses) in {on['rotate_seconds']:.1f} s",
        )
    )
    report.add(
        Figure(
            "crypto",
            "rotate-encryption sealing a plaintext database",
            on["seal_rows"] / on["seal_seconds"],
            "rows/s",
            note=f"{int(on['seal_rows']):,} supporters and addresses",
        )
    )
    report.notes.append(
        "crypto: AES-256-GCM (cryptography) per value with a fresh nonce; addresses by blind"
        " index (HMAC-SHA256). Ingest seals the body, raw payload, address and, for a new"
        " sender, the name, address and name tokens of each message; fan-out decrypts each"
        " member's address, seals it again for its message and seals the shared body once"
        " per batch. Rotation reads in id order, 1,000 rows per transaction, and rewrites"
        " only values under an older key."
    )


if __name__ == "__main__":
    result = child(Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1")
    print(json.dumps(result))
