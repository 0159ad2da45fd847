"""Token buckets per sender and per chat, on an injected clock so tests never sleep."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from channels.base import ChannelAdapter, OutboundMessage

Monotonic = Callable[[], float]

# Senders are paced this far under their configured rate: a wake-up that is a few
# milliseconds late must never let a provider's one-second window count one send too many.
PACING = 0.98
# And, measured on the actual send times, no window of this length ever holds more than
# `rate` sends: after an event-loop stall, late sends would otherwise bunch up with
# on-time ones (the margin covers the hop from here to the provider).
GUARD_WINDOW = 1.015
# What `RateLimits.take` answers when a bucket it waited on was replaced meanwhile: take
# again, from the buckets as they are now.
RETAKE = -1.0
Sleep = Callable[[float], Awaitable[None]]


class TokenBucket:
    """`rate` tokens a second, holding at most `burst`.

    Taking a token may drive the balance negative: each caller reserves its own slot
    in the future and waits for it, so concurrent senders queue instead of stampeding.
    A cost above `burst` waits only for a full bucket and leaves the rest as debt that
    later takers wait off: it goes out, and the rate still holds.
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
        # Replaced by a bucket of another rate (this process's share changed): sends that
        # reserved a slot here take one again from the new bucket.
        self.retired = False
        self._recent: deque[float] = deque()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def take_over(self, old: TokenBucket) -> None:
        """Replace `old` (the rate changed): its recent sends still count in the guard's
        window, no slot is free at once, and the sends waiting on it take again here."""
        old.retired = True
        self._recent = old._recent
        self._tokens = 0.0

    def delay_for(self, cost: float = 1.0) -> float:
        """Seconds until `cost` tokens (a full bucket, for more than it holds) would be
        available, taking nothing."""
        self._refill()
        missing = min(cost, self.burst) - self._tokens
        return max(0.0, missing / self.rate)

    def tokens_for(self, units: int) -> float:
        """What a send counted `units` times by the guard takes from the bucket. A window
        of `window_limit` fits `window_limit // units` such sends, so each takes that
        share of it (10/3 for 3 units at 10): taking only `units` would let the bucket
        hand out slots faster than the guard lets sends go, and they would wait in the
        guard, past the lease that the wait for a token is bounded by."""
        limit = self._window_limit
        if limit is None or units == 1 or units >= limit:
            return units
        return limit / (limit // units)

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

    async def guard(self, units: int = 1, *, max_wait: float | None = None) -> bool:
        """Wait until a send of `units` now keeps every GUARD_WINDOW of actual sends within
        the rate, then count it `units` times and answer True; a send of more units than
        the window holds goes alone, once the window is empty. False (nothing counted) when
        that would take longer than `max_wait` seconds: sends of mixed sizes can pack
        badly into windows and queue here, and no send may wait past its lease. The caller
        hands the request to the adapter in the same step (no await in between,
        routing/dispatch/dispatcher.py), so a stall delays a send and its count together."""
        if self._window_limit is None:
            return True
        recent = self._recent
        deadline = None if max_wait is None else self._clock() + max_wait
        while True:
            now = self._clock()
            while recent and recent[0] <= now - GUARD_WINDOW:
                recent.popleft()
            over = len(recent) + units - self._window_limit
            if over <= 0 or not recent:
                if units == 1:
                    recent.append(now)
                else:
                    recent.extend(itertools.repeat(now, units))
                return True
            # Until the `over` oldest have left (all of them, for a send above the limit);
            # at least 1 ms, so that a clock with coarse ticks always moves on.
            leaving = recent[min(over, len(recent)) - 1]
            pause = max(leaving + GUARD_WINDOW - now, 0.001)
            if deadline is not None and now + pause > deadline:
                return False
            await self._sleep(pause)

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
        # This process's part of every sender's rate: 1 / the dispatchers running
        # (routing/dispatch/liveness.py), so together they keep each sender within it.
        self.share = 1.0
        self._chats: dict[tuple[str, str], TokenBucket] = {}

    def sender(self, key: str, rate: float | None) -> TokenBucket | None:
        if not rate:
            return None
        rate *= self.share
        bucket = self._senders.get(key)
        if bucket is None or bucket.rate != rate * PACING:
            old = bucket
            # No burst: sends are spaced 1/rate apart, so no one-second window a provider
            # measures ever sees more than `rate` (a full second's burst would show 2x).
            bucket = self._senders[key] = TokenBucket(
                rate * PACING,
                burst=1.0,
                window_limit=max(1, int(rate)),
                clock=self.clock,
                sleep=self.sleep,
            )
            if old is not None:
                bucket.take_over(old)
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

    async def take(self, buckets: list[tuple[TokenBucket, int]], *, max_wait: float) -> float:
        """Take a send of so many units from every bucket and wait for the slowest; returns
        0.0 once done.

        When the wait would exceed `max_wait`, nothing is taken and the answer is how long
        to postpone by: the caller reschedules the message rather than hold its lease. The
        same holds when the guard on actual send times would keep it past `max_wait`; the
        tokens it took are then spent (the rate only errs low). RETAKE when a sender's
        bucket was replaced while it waited (its share of the rate changed).
        """
        taken: list[tuple[TokenBucket, float]] = []
        longest = 0.0
        for bucket, units in buckets:
            cost = units if units == 1 else bucket.tokens_for(units)
            wait = bucket.reserve(cost, max_wait=max_wait)
            if wait is None:
                for done, done_cost in taken:
                    done.refund(done_cost)
                return max(bucket.delay_for(cost), 0.001)
            taken.append((bucket, cost))
            longest = max(longest, wait)
        if longest:
            await self.sleep(longest)
            if any(bucket.retired for bucket, _ in buckets):
                return RETAKE
        for bucket, units in buckets:
            if not await bucket.guard(units, max_wait=max_wait - longest):
                return GUARD_WINDOW
        return 0.0


def sender_buckets(
    limits: RateLimits,
    adapter: ChannelAdapter,
    channel: str,
    address: str,
    message: OutboundMessage,
) -> list[tuple[TokenBucket, int]]:
    """The buckets a send to `address` draws from, with the units it counts in each: its
    sender's, as many units as the adapter's `rate_units` says (channels.base.RateMetered;
    Twilio: an SMS's segments), else one; and, for adapters with a `per_recipient_rate`
    (Telegram: 1 a second per chat), the chat's, one."""
    key = adapter.sender_key(channel)  # type: ignore[arg-type]
    rate = getattr(adapter, "rate_per_second", None)
    chat_rate = getattr(adapter, "per_recipient_rate", None)
    buckets: list[tuple[TokenBucket, int]] = []
    sender = limits.sender(key, rate)
    if sender is not None:
        rate_units = getattr(adapter, "rate_units", None)
        buckets.append((sender, rate_units(message) if rate_units is not None else 1))
    chat = limits.chat(key, address, chat_rate)
    if chat is not None:
        buckets.append((chat, 1))
    return buckets
