"""RALLYPOINT_API_RATE_PER_MINUTE: requests per API key, as a token bucket per key id in
this process (a burst of up to a minute's worth, refilled evenly). Over it → 429 with
Retry-After, the seconds until one request is allowed again."""

from __future__ import annotations

import math
import threading


class ApiRateLimiter:
    """Token buckets by key id; `per_minute` 0 allows everything."""

    def __init__(self, per_minute: int) -> None:
        self.capacity = float(per_minute)
        self.per_second = per_minute / 60.0
        self._buckets: dict[int, tuple[float, float]] = {}  # key id -> (tokens, at)
        self._lock = threading.Lock()

    def take(self, key_id: int, now: float) -> int | None:
        """Spend one request of `key_id` at `now` (seconds): None when allowed, else the
        whole seconds to wait (Retry-After)."""
        if self.capacity <= 0:
            return None
        with self._lock:
            tokens, at = self._buckets.get(key_id, (self.capacity, now))
            tokens = min(self.capacity, tokens + max(0.0, now - at) * self.per_second)
            if tokens >= 1.0:
                self._buckets[key_id] = (tokens - 1.0, now)
                return None
            self._buckets[key_id] = (tokens, now)
            return max(1, math.ceil((1.0 - tokens) / self.per_second))
