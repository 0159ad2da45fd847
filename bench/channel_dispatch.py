"""Benchmark: the dispatch run of bench/dispatch.py for WhatsApp Cloud and Telegram: one
`rallypoint worker` sending queued messages through the adapter to the same loopback fake
(bench/fake_provider.py serves channels/whatsapp_cloud/fake.py and channels/telegram/fake.py
at 100 ms latency), against the adapter alone and aiohttp alone in the same run."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from bench import fake_provider, seed
from bench.dispatch import send_path
from bench.report import Report

SENT = "SELECT count(*) FROM messages WHERE status = 'sent'"


def channel_env(channel: str, provider: str) -> dict[str, str]:
    if channel == "telegram":
        return {
            "TELEGRAM_BOT_TOKEN": fake_provider.TELEGRAM_TOKEN,
            "TELEGRAM_WEBHOOK_SECRET": "bench-webhook-secret",
            "TELEGRAM_API_BASE": provider,
            "TELEGRAM_RATE_PER_SECOND": "100000",
        }
    return {
        "WHATSAPP_ACCESS_TOKEN": fake_provider.WHATSAPP_TOKEN,
        "WHATSAPP_PHONE_NUMBER_ID": fake_provider.WHATSAPP_PHONE_ID,
        "WHATSAPP_APP_SECRET": "bench-app-secret",
        "WHATSAPP_VERIFY_TOKEN": "bench-verify-token",
        "WHATSAPP_API_BASE": provider + "/v21.0",
        "WHATSAPP_RATE_PER_SECOND": "100000",
    }


def seeded(work: Path, channel: str, count: int) -> Path:
    """`count` supporters on `channel` with one queued message each: Telegram addresses
    are chat ids; WhatsApp ones wrote in the last hour, so free text may go (24 h window)."""
    db = work / f"dispatch-{channel}.db"
    for old in work.glob(f"{db.name}*"):
        old.unlink()
    seed.migrate(db)
    seed.seed_supporters(db, count, channel=channel)
    seed.seed_queued_messages(db, count, channel=channel)
    with sqlite3.connect(db) as conn:
        if channel == "telegram":
            conn.execute("UPDATE supporter_addresses SET address = CAST(supporter_id AS TEXT)")
            conn.execute("UPDATE messages SET address = CAST(supporter_id AS TEXT)")
        else:
            conn.execute("UPDATE supporter_addresses SET last_inbound_at = ?", (seed.now_text(),))
    return db


def run(report: Report, work: Path, count: int = 6_000) -> None:
    for channel, label in (("whatsapp", "WhatsApp Cloud"), ("telegram", "Telegram")):
        db = seeded(work, channel, count)
        database = (f"sqlite:///{db}", lambda db=db: seed.count(db, SENT))
        send_path(
            report,
            work,
            label,
            count,
            database,
            kind=channel,
            channel_env=lambda provider, channel=channel: channel_env(channel, provider),
        )
