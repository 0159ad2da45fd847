"""Quiet hours: announcement traffic waits for the supporter's local daytime window.

Pure functions of an injected `now`; one-on-ones and replies are never held.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

log = logging.getLogger(__name__)

# Kinds that wait for the window; everything a person writes or answers goes at once.
HELD_KINDS = frozenset({"announcement", "poll", "checkin", "event"})
NEVER_HELD_KINDS = frozenset({"one_on_one", "auto_reply"})


def parse_hhmm(text: str) -> time:
    hours, _, minutes = text.strip().partition(":")
    return time(int(hours), int(minutes or 0))


def zone(name: str | None, default: str) -> ZoneInfo:
    """The supporter's zone; an unknown name falls back to the default (logged)."""
    for candidate in (name, default, "UTC"):
        if not candidate:
            continue
        try:
            return ZoneInfo(candidate)
        except (ZoneInfoNotFoundError, ValueError):
            log.warning("unknown timezone %r; using the default", candidate)
    return ZoneInfo("UTC")


def is_held_kind(kind: str, priority: int) -> bool:
    if kind in NEVER_HELD_KINDS:
        return False
    return kind in HELD_KINDS or priority >= 1


def _in_quiet(local: time, start: time, end: time) -> bool:
    if start == end:
        return False  # no quiet hours configured
    if start < end:  # e.g. 13:00-14:00
        return start <= local < end
    return local >= start or local < end  # spans midnight, e.g. 21:00-08:00


def next_allowed(now: datetime, tz: ZoneInfo, start: time, end: time) -> datetime | None:
    """None when `now` is inside the allowed window; else the next window start (UTC)."""
    local = now.astimezone(tz)
    if not _in_quiet(local.time().replace(tzinfo=None), start, end):
        return None
    day = local.date()
    if local.time().replace(tzinfo=None) >= end:
        day += timedelta(days=1)  # evening: tomorrow morning
    opens = datetime.combine(day, end, tzinfo=tz)
    return opens.astimezone(UTC)


def hold_until(
    *,
    now: datetime,
    kind: str,
    priority: int,
    timezone: str | None,
    default_timezone: str,
    quiet_start: str,
    quiet_end: str,
) -> datetime | None:
    """When a message due now must wait, the UTC time to send it at; None: send now."""
    if not is_held_kind(kind, priority):
        return None
    return next_allowed(
        now, zone(timezone, default_timezone), parse_hhmm(quiet_start), parse_hhmm(quiet_end)
    )
