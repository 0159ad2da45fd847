"""Backoff for retryable send failures: exponential from about 2 s, capped at 5 min, jittered."""

from __future__ import annotations

from collections.abc import Callable

from channels.base import SendError, Throttled

BASE_DELAY = 2.0
MAX_DELAY = 300.0


def backoff_delay(
    attempt: int,
    *,
    random: Callable[[], float],
    retry_after: float | None = None,
    base: float = BASE_DELAY,
    cap: float = MAX_DELAY,
) -> float:
    """Seconds to wait after the `attempt`-th failed try (counting from 1) on one channel.

    Equal jitter: half the exponential step is fixed, half is random, so retries of a
    burst spread out without ever retrying at once. A provider's `retry_after` wins
    when it asks for longer.
    """
    step = min(cap, base * 2.0 ** max(0, attempt - 1))
    delay = step / 2 + random() * step / 2
    if retry_after is not None and retry_after > delay:
        delay = retry_after
    return delay


def retry_after_of(error: BaseException) -> float | None:
    return error.retry_after if isinstance(error, Throttled) else None


def should_retry(error: BaseException, attempts: int, max_attempts: int) -> bool:
    """Retry on the same channel: retryable errors (and unexpected ones) until the limit."""
    retryable = error.retryable if isinstance(error, SendError) else True
    return retryable and attempts < max_attempts
