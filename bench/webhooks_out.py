"""Outgoing webhooks: (1) deliveries to a subscriber 100 ms away (bench/webhook_receiver.py,
its own process, checking every signature and counting each event once), by the delivery
loop (routing/webhooks/delivery.py) on SQLite, against the same run's baseline of the same
number of signed POSTs sent straight from the same kind of HTTP client with the same number
in flight (no database); (2) inbound SMS webhooks into `serve` with one subscription to
`message.received` against the same without, rounds alternating."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
import urllib.request
from pathlib import Path

from bench import seed, twilio_forms
from bench.ingest import CONNECTIONS, serve, serve_env
from bench.load import run_load
from bench.report import Figure, Report
from bench.servers import free_port, python, running, wait_http

EVENTS = 5_000
TARGET_EVENTS_PER_SECOND = 1_000
LIMIT_SECONDS = 90.0
INGEST_SECONDS = 6
INGEST_ROUNDS = 2


def received(url: str) -> dict[str, int]:
    with urllib.request.urlopen(url + "/count", timeout=10) as answer:  # noqa: S310 - loopback
        counts: dict[str, int] = json.loads(answer.read())
    return counts


async def bare_send(hook: str, secret: str, events: int, in_flight: int) -> float:
    """The baseline: `events` signed POSTs, `in_flight` at a time; events per second."""
    from gateway.app import provider_client
    from gateway.settings import Settings
    from routing.webhooks.signing import signature

    settings = Settings(_env_file=None, database_url="sqlite://")
    client = provider_client(settings)
    gate = asyncio.Semaphore(in_flight)

    async def one(i: int) -> None:
        body = json.dumps({"id": f"base_{i}", "type": "webhook.test", "data": {}}).encode()
        headers = {"Rallypoint-Signature": signature(secret, int(time.time()), body)}
        async with gate:
            answer = await client.post(hook, content=body, headers=headers)
            answer.raise_for_status()

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(events)))
    seconds = time.perf_counter() - start
    await client.aclose()
    return events / seconds


def seed_deliveries(db: Path, hook: str, secret: str, events: int) -> None:
    """One active subscription and `events` due `supporter.created` deliveries."""
    seed.migrate(db)
    seed.seed_supporters(db, events)
    stamp = seed.now_text()
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO webhook_subscriptions (id, url, events, secret, created_at,"
            " consecutive_failures) VALUES (1, ?, ',supporter.created,', ?, ?, 0)",
            (hook, secret, stamp),
        )
        conn.executemany(
            "INSERT INTO webhook_deliveries (subscription_id, event, supporter_id, status,"
            " attempts, due_at, created_at) VALUES (1, 'supporter.created', ?, 'pending', 0,"
            " ?, ?)",
            [(i, stamp, stamp) for i in range(1, events + 1)],
        )


async def deliver_all(db: Path, receiver: str, events: int) -> tuple[float, bool]:
    """Run the delivery loop until the receiver has every event; (seconds, finished)."""
    from gateway.app import build_context, shutdown
    from gateway.settings import Settings
    from routing.webhooks.delivery import WebhookDeliverer

    settings = Settings(_env_file=None, database_url=f"sqlite:///{db}", allow_private_webhooks=True)
    ctx = build_context(settings)
    before = received(receiver)["unique"]
    deliverer = WebhookDeliverer(ctx, poll_seconds=0.05)
    start = time.perf_counter()
    await deliverer.start()
    finished = False
    while time.perf_counter() - start < LIMIT_SECONDS:
        await asyncio.sleep(0.1)
        if received(receiver)["unique"] - before >= events:
            finished = True
            break
    seconds = time.perf_counter() - start
    await deliverer.stop()
    await shutdown(ctx)
    return seconds, finished


def ingest_rates(work: Path, hook: str, volume: int = 100_000) -> tuple[float, float]:
    """Inbound SMS req/s into `serve` without and with one `message.received`
    subscription (rounds alternate; the mean of each); the dispatcher and the delivery
    loop are off, as in the ingest benchmark: this is the cost of writing the events."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    forms = twilio_forms.write_signed(
        [twilio_forms.inbound_form(i) for i in range(volume)],
        url + "/webhooks/twilio",
        work / "inbound.txt",
    )
    rates: dict[bool, list[float]] = {False: [], True: []}
    for r in range(INGEST_ROUNDS):
        for subscribed in (False, True):
            db = work / f"ingest-{r}-{int(subscribed)}.db"
            seed.migrate(db)
            if subscribed:
                with sqlite3.connect(db) as conn:
                    conn.execute(
                        "INSERT INTO webhook_subscriptions (url, events, secret, created_at,"
                        " consecutive_failures) VALUES (?, ',message.received,', 'whsec_x',"
                        " ?, 0)",
                        (hook, seed.now_text()),
                    )
            env = serve_env(db, port)
            with running(serve(), env, None, work / f"serve-{r}-{subscribed}.log"):
                wait_http(url + "/healthz", timeout=180)  # a loaded machine starts slowly
                result = run_load(url, "/webhooks/twilio", forms, INGEST_SECONDS, CONNECTIONS, work)
            if subscribed:
                due = seed.count(db, "SELECT count(*) FROM webhook_deliveries")
                stored = seed.count(db, "SELECT count(*) FROM messages")
                assert due == stored, f"{stored} messages but {due} deliveries"
            rates[subscribed].append(result.requests_per_second)
            print(
                f"  round {r + 1} {'with' if subscribed else 'without'} a subscription:"
                f" {result.requests_per_second:,.0f} req/s",
                flush=True,
            )
    return sum(rates[False]) / INGEST_ROUNDS, sum(rates[True]) / INGEST_ROUNDS


def run(report: Report, work: Path, events: int = EVENTS) -> None:
    from routing.webhooks.delivery import IN_FLIGHT
    from routing.webhooks.signing import new_secret

    secret = new_secret()
    port = free_port()
    receiver = f"http://127.0.0.1:{port}"
    hook = receiver + "/hook"
    args = [python(), "-m", "bench.webhook_receiver", str(port)]
    env = {"RECEIVER_SECRET": secret, "RECEIVER_LATENCY_MS": "100"}
    with running(args, env, receiver + "/healthz", work / "receiver.log"):
        baseline = asyncio.run(bare_send(hook, secret, events, IN_FLIGHT))
        db = work / "deliveries.db"
        seed_deliveries(db, hook, secret, events)
        seconds, finished = asyncio.run(deliver_all(db, receiver, events))
        counts = received(receiver)
        rate = events / seconds if finished else counts["unique"] / seconds
        report.add(
            Figure(
                "webhooks_out",
                f"{events:,} deliveries to a receiver 100 ms away",
                rate,
                "events/s",
                baseline,
                f"signed POSTs alone, {IN_FLIGHT} in flight",
                f">= {TARGET_EVENTS_PER_SECOND:,} events/s",
                finished and rate >= TARGET_EVENTS_PER_SECOND,
                note=f"receiver (baseline's and loop's): {counts['unique']:,} unique of"
                f" {counts['total']:,} signed deliveries, {counts['bad']} bad signatures"
                + ("" if finished else f"; stopped after {seconds:.0f} s"),
            )
        )
        without, with_one = ingest_rates(work, hook)
    report.add(
        Figure(
            "webhooks_out",
            "inbound SMS with one message.received subscription",
            with_one,
            "req/s",
            without,
            "the same without a subscription",
            ">= 0.9 of without",
            with_one >= 0.9 * without,
        )
    )
