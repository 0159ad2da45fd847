"""Spans of time as organizers write them: `90s`, `15m`, `6h`, `2d`."""

from __future__ import annotations

import re

_SPAN = re.compile(r"([1-9][0-9]{0,6})\s*([smhd])")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# Longer than any retention of a silence that still matters.
MAX_SPAN = 30 * 86400


def parse_span(text: str) -> int:
    """Seconds in `text` (a whole number and one unit: s, m, h or d, up to 30 days);
    ValueError saying what is accepted otherwise."""
    found = _SPAN.fullmatch(text.strip().lower())
    if found is None:
        raise ValueError("give a number and a unit (s, m, h or d), like 90s or 6h")
    seconds = int(found[1]) * _SECONDS[found[2]]
    if seconds > MAX_SPAN:
        raise ValueError("at most 30d")
    return seconds


def span_text(seconds: int) -> str:
    """`seconds` written back in the largest whole unit: 21600 → "6h"."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
