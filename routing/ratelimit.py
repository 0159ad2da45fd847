"""Token buckets per sender and per chat, on an injected clock so tests never sleep."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from channels.base import ChannelAdapter
    from gateway.settings import Settings

Monotonic = Callable[[], float]

# Senders are paced this far under their configured rate: a wake-up that is a few
# milliseconds late must never let a provider's one-second window count one send too many.
PACING = 0.98
# And, measured on the actual send times, no window of this length ever holds more than
# `rate` sends: after an event-loop stall, late sends would otherwise bunch up with
# on-time ones (the margin covers the hop from here to the provider).
GUARD_WINDOW = 1.015
Sleep = Callable[[float], Awaitable[None]]


class TokenBucket:
    """`rate` tokens a second, holding at most `burst`.

    Taking a token may drive the balance negative: each caller reserves its own slot
    in the future and waits for it, so concurrent senders queue instead of stampeding.
    """

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        *,
        window_limit: int | None = None,
        clock: Monotonic = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate)
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.burst
        self._stamp = clock()
        self._window_limit = window_limit  # None: no guard on actual send times
        self._recent: deque[float] = deque()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def delay_for(self, cost: float = 1.0) -> float:
        """Seconds until `cost` tokens would be available, taking nothing."""
        self._refill()
        missing = cost - self._tokens
        return max(0.0, missing / self.rate)

    def reserve(self, cost: float = 1.0, *, max_wait: float | None = None) -> float | None:
        """Take `cost` tokens and return how long to wait for them; None (nothing taken)
        when that wait would exceed `max_wait`."""
        wait = self.delay_for(cost)
        if max_wait is not None and wait > max_wait:
            return None
        self._tokens -= cost
        return wait

    def refund(self, cost: float = 1.0) -> None:
        self._tokens = min(self.burst, self._tokens + cost)

    @property
    def idle(self) -> bool:
        self._refill()
        return self._tokens >= self.burst

    async def guard(self) -> None:
        """Wait until a send now keeps every GUARD_WINDOW of actual sends within the rate,
        then count it. The caller hands the request to the adapter in the same step (no
        await in between, routing/dispatch.py), so a stall delays a send and its count
        together."""
        if self._window_limit is None:
            return
        while True:
            now = self._clock()
            while self._recent and self._recent[0] <= now - GUARD_WINDOW:
                self._recent.popleft()
            if len(self._recent) < self._window_limit:
                self._recent.append(now)
                return
            # At least 1 ms, so that a clock with coarse ticks always moves on.
            await self._sleep(max(self._recent[0] + GUARD_WINDOW - now, 0.001))

    async def acquire(self, cost: float = 1.0) -> None:
        wait = self.reserve(cost)
        if wait:
            await self._sleep(wait)


class RateLimits:
    """One bucket per sender (`adapter.sender_key(channel)`) and one per (sender, chat)."""

    MAX_CHAT_BUCKETS = 10_000

    def __init__(self, *, clock: Monotonic = time.monotonic, sleep: Sleep = asyncio.sleep) -> None:
        self.clock = clock
        self.sleep = sleep
        self._senders: dict[str, TokenBucket] = {}
        self._chats: dict[tuple[str, str], TokenBucket] = {}

    def sender(self, key: str, rate: float | None) -> TokenBucket | None:
        if not rate:
            return None
        bucket = self._senders.get(key)
        if bucket is None or bucket.rate != rate * PACING:
            # No burst: sends are spaced 1/rate apart, so no one-second window a provider
            # measures ever sees more than `rate` (a full second's burst would show 2x).
            bucket = self._senders[key] = TokenBucket(
                rate * PACING,
                burst=1.0,
                window_limit=max(1, int(rate)),
                clock=self.clock,
                sleep=self.sleep,
            )
        return bucket

    def chat(self, key: str, address: str, rate: float | None) -> TokenBucket | None:
        if not rate:
            return None
        bucket = self._chats.get((key, address))
        if bucket is None:
            if len(self._chats) >= self.MAX_CHAT_BUCKETS:
                # Full buckets hold no information: forget them rather than grow forever.
                self._chats = {k: b for k, b in self._chats.items() if not b.idle}
            bucket = TokenBucket(rate, burst=1.0, clock=self.clock, sleep=self.sleep)
            self._chats[(key, address)] = bucket
        return bucket

    async def take(self, buckets: list[tuple[TokenBucket, float]], *, max_wait: float) -> float:
        """Take from every bucket and wait for the slowest; returns 0.0 once done.

        When the wait would exceed `max_wait`, nothing is taken and the answer is how long
        to postpone by: the caller reschedules the message rather than hold its lease.
        """
        taken: list[tuple[TokenBucket, float]] = []
        longest = 0.0
        for bucket, cost in buckets:
            wait = bucket.reserve(cost, max_wait=max_wait)
            if wait is None:
                for done, done_cost in taken:
                    done.refund(done_cost)
                return max(bucket.delay_for(cost), 0.001)
            taken.append((bucket, cost))
            longest = max(longest, wait)
        if longest:
            await self.sleep(longest)
        for bucket, _ in taken:
            await bucket.guard()
        return 0.0


# Settings that hold a provider's sending rate, by the adapter's provider name; an
# adapter may instead expose `rate_per_second` itself.
RATE_SETTINGS = {
    "twilio": "twilio_rate_per_second",
    "whatsapp": "whatsapp_rate_per_second",
    "whatsapp_cloud": "whatsapp_rate_per_second",
    "telegram": "telegram_rate_per_second",
    "email": "smtp_rate_per_second",
    "smtp": "smtp_rate_per_second",
}


def sender_buckets(
    limits: RateLimits, adapter: ChannelAdapter, channel: str, address: str, settings: Settings
) -> list[tuple[TokenBucket, float]]:
    """The buckets a send to `address` draws from: its sender's and, for adapters with a
    `per_recipient_rate` (Telegram: 1 a second per chat), the chat's."""
    key = adapter.sender_key(channel)  # type: ignore[arg-type]
    rate = getattr(adapter, "rate_per_second", None)
    if rate is None and adapter.provider in RATE_SETTINGS:
        rate = getattr(settings, RATE_SETTINGS[adapter.provider])
    chat_rate = getattr(adapter, "per_recipient_rate", None)
    buckets = [limits.sender(key, rate), limits.chat(key, address, chat_rate)]
    return [(bucket, 1.0) for bucket in buckets if bucket is not None]
