"""Benchmark: reach during a provider outage.

1,000 supporters prefer SMS and also have Telegram. An announcement goes to all of them
while Twilio answers every send with HTTP 500. Reported: the share reached (on any
channel) within 5 minutes and the time until 99% were reached, beside the same run with
no outage, and the same outage with the circuit breaker off (every message spending its
own retries on SMS before it falls back).

The real dispatcher, recorder, fall-back and rate limits run against the provider fakes
at the wire (httpx.MockTransport); time is simulated: the clock jumps to the next due row
and rate-limit waits move it, so the figures are the retry policy's, not this machine's
speed (the same on any machine, and the whole run takes seconds).
"""

from __future__ import annotations

import asyncio
import logging
import random
import sqlite3
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from bench import seed
from bench.report import Figure, Report

SUPPORTERS = 1_000
ACCOUNT_SID = "AC" + "b" * 32
AUTH_TOKEN = "reach-bench-token"
BOT_TOKEN = "123456:reach-bench"
SMS_FROM = "+15005550006"
WITHIN = timedelta(minutes=5)
GIVE_UP = timedelta(minutes=60)


class SimClock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def to(self, when: datetime) -> None:
        self.now = max(self.now, when)


def _seed(db: Path) -> None:
    seed.migrate(db)
    seed.seed_supporters(db, SUPPORTERS)
    with sqlite3.connect(db) as conn:
        conn.execute('UPDATE supporters SET preferred_channels = \'["sms", "telegram"]\'')
        conn.executemany(
            "INSERT INTO supporter_addresses (supporter_id, channel, address, opted_out)"
            " VALUES (?, 'telegram', ?, 0)",
            ((i, str(700_000 + i)) for i in range(1, SUPPORTERS + 1)),
        )


async def _scenario(db: Path, *, outage: bool, breaker: bool) -> tuple[float, float | None, int]:
    """(share reached within 5 min, seconds until 99% reached or None, SMS requests)."""
    from channels.telegram.fake import FakeTelegramApi
    from channels.twilio.fake import FakeTwilio, Reply
    from gateway.app import build_context, shutdown
    from gateway.settings import Settings
    from routing.dispatch.breaker import Breakers
    from routing.dispatch.dispatcher import Dispatcher
    from routing.dispatch.ratelimit import RateLimits
    from routing.outbound.fanout import fan_out
    from storage.models import Announcement

    # One line per failed send would drown the report.
    logging.getLogger("channels").setLevel(logging.ERROR)
    start = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    clock = SimClock(start)
    twilio = FakeTwilio(ACCOUNT_SID, AUTH_TOKEN, clock=clock)
    telegram = FakeTelegramApi(BOT_TOKEN)
    if outage:
        for i in range(1, SUPPORTERS + 1):
            twilio.always(seed.phone(i), Reply.server_error(500))

    def route(request: httpx.Request) -> httpx.Response:
        if request.url.host == "api.telegram.test":
            return telegram.handler(request)
        return twilio.handle(request)

    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url=f"sqlite:///{db}",
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        twilio_sms_from=SMS_FROM,
        twilio_api_base="https://api.twilio.test",
        telegram_bot_token=BOT_TOKEN,
        telegram_api_base="https://api.telegram.test",
        telegram_webhook_secret="reach-bench-secret",
        # A messaging service's rate, so the no-outage baseline is not the pacing of one
        # long code (1/s); Telegram keeps its own default (30/s).
        twilio_rate_per_second=100.0,
        channel_order="sms,telegram",
    )
    http = httpx.AsyncClient(transport=httpx.MockTransport(route))
    ctx = build_context(settings, clock=clock, http_client=http)

    async def sleep(seconds: float) -> None:
        target = clock() + timedelta(seconds=seconds)
        await asyncio.sleep(0)
        clock.to(target)

    limits = RateLimits(clock=lambda: clock().timestamp(), sleep=sleep)
    breakers = Breakers(clock) if breaker else Breakers(clock, threshold=10**9)
    dispatcher = Dispatcher(
        ctx, limits=limits, breakers=breakers, random=random.Random(7).random, concurrency=64
    )
    async with ctx.sessions() as session:
        announcement = Announcement(
            body="Vigil tonight at 7, bring a candle.",
            audience={"all": True},
            state="pending",
            created_at=clock(),
        )
        session.add(announcement)
        await session.commit()
        assert announcement.id is not None
    await fan_out(ctx, announcement.id)

    while clock() - start < GIVE_UP:
        await dispatcher.run_until_idle()
        with sqlite3.connect(db) as conn:
            (due,) = conn.execute("SELECT min(due_at) FROM outbox").fetchone()
        if due is None:
            break
        clock.to(datetime.fromisoformat(due).replace(tzinfo=UTC))
    await dispatcher.flush_circuits()
    await shutdown(ctx)
    await http.aclose()

    with sqlite3.connect(db) as conn:
        sent = sorted(
            datetime.fromisoformat(at).replace(tzinfo=UTC) - start
            for (at,) in conn.execute(
                "SELECT sent_at FROM messages WHERE direction = 'outbound' AND sent_at IS NOT NULL"
            )
        )
    within = sum(1 for t in sent if t <= WITHIN) / SUPPORTERS
    needed = -(-SUPPORTERS * 99 // 100)
    to_99 = sent[needed - 1].total_seconds() if len(sent) >= needed else None
    return within, to_99, len(twilio.requests)


def _measure(
    work: Path, name: str, *, outage: bool, breaker: bool
) -> tuple[float, float | None, int]:
    db = work / f"reach-{name}.db"
    _seed(db)
    return asyncio.run(_scenario(db, outage=outage, breaker=breaker))


def run(report: Report, work: Path) -> None:
    base_share, base_99, _ = _measure(work, "no-outage", outage=False, breaker=True)
    share, to_99, sms_tries = _measure(work, "outage", outage=True, breaker=True)
    off_share, off_99, off_tries = _measure(work, "outage-no-breaker", outage=True, breaker=False)
    label = "no outage, same run"
    report.add(
        Figure(
            "reach",
            "SMS provider down: reached within 5 min",
            share * 100,
            "%",
            baseline=base_share * 100,
            baseline_label=label,
            target=">= 99%",
            passed=share >= 0.99,
            note=f"{SUPPORTERS:,} supporters with SMS first and Telegram; {sms_tries} SMS tries",
        )
    )
    report.add(
        Figure(
            "reach",
            "SMS provider down: time to reach 99%",
            to_99 if to_99 is not None else float("inf"),
            "s",
            baseline=base_99,
            baseline_label=label,
            note="simulated time: the retry and fall-back policy, not CPU",
        )
    )
    report.add(
        Figure(
            "reach",
            "same outage, circuit breaker off: within 5 min",
            off_share * 100,
            "%",
            baseline=base_share * 100,
            baseline_label=label,
            note=(
                f"time to 99%: {off_99:.0f} s; {off_tries:,} SMS tries"
                if off_99 is not None
                else f"99% not reached in {GIVE_UP}; {off_tries:,} SMS tries"
            ),
        )
    )


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        run(Report(), Path(tmp))
