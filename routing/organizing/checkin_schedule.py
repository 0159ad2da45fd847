"""When a check-in runs: its weekly occurrences in its own timezone, and what a change of
schedule does to the occurrence already run.

An occurrence is a wall-clock time: `weekday` (0 = Monday) at `local_time` in the
check-in's `timezone` (an IANA name, for a team in another region), or in the
organization's (RALLYPOINT_DEFAULT_TIMEZONE) when it has none. So "Monday 18:00" for a
Nairobi team is 15:00 UTC, and a New York team's 18:00 moves from 23:00 to 22:00 UTC
when daylight time starts.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Checkin

log = logging.getLogger(__name__)


def parse_local_time(text: str) -> time:
    """'HH:MM' (24 h) as a time; ValueError otherwise."""
    hours, sep, minutes = text.partition(":")
    if not sep or len(minutes) != 2 or not hours.isdigit() or not minutes.isdigit():
        raise ValueError("local_time must be HH:MM")
    return time(int(hours), int(minutes))


def occurrence_on(day: date, at: time, tz: ZoneInfo) -> datetime:
    """`at` on `day` as a wall-clock time in `tz`, in UTC.

    A time the clocks skip (02:30 on a spring-forward night in New York) or pass twice
    (01:30 on a fall-back night) resolves as zoneinfo does with fold=0: with the offset in
    force before the change, so the skipped 02:30 is 03:30 daylight time and the repeated
    01:30 is the first one (still daylight time).
    """
    return datetime.combine(day, at, tzinfo=tz).astimezone(UTC)


def latest_occurrence(weekday: int, local_time: str, tz: ZoneInfo, now: datetime) -> datetime:
    """The latest moment <= now that is `weekday` at `local_time` in `tz`, in UTC
    (DST gaps and repeats as in `occurrence_on`)."""
    at = parse_local_time(local_time)
    local_now = now.astimezone(tz)
    day = local_now.date() - timedelta(days=(local_now.weekday() - weekday) % 7)
    candidate = occurrence_on(day, at, tz)
    return candidate if candidate <= now else occurrence_on(day - timedelta(days=7), at, tz)


def next_occurrence(weekday: int, local_time: str, tz: ZoneInfo, after: datetime) -> datetime:
    """The first moment > after that is `weekday` at `local_time` in `tz`, in UTC."""
    at = parse_local_time(local_time)
    local = after.astimezone(tz)
    day = local.date() + timedelta(days=(weekday - local.weekday()) % 7)
    candidate = occurrence_on(day, at, tz)
    return candidate if candidate > after else occurrence_on(day + timedelta(days=7), at, tz)


def as_utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; they were stored as UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def checkin_zone(checkin: Checkin, org_tz: ZoneInfo) -> ZoneInfo:
    """The check-in's own timezone, else the organization's."""
    if checkin.timezone is None:
        return org_tz
    try:
        return ZoneInfo(checkin.timezone)
    except (ZoneInfoNotFoundError, ValueError):  # checked on the way in; tzdata may change
        log.warning(
            "check-in %s: unknown timezone %r, using the org's", checkin.id, checkin.timezone
        )
        return org_tz


def is_due(checkin: Checkin, org_tz: ZoneInfo, now: datetime) -> bool:
    """Its latest occurrence is after its last run (or its creation) and not in the future."""
    since = as_utc(checkin.last_run_at or checkin.created_at)
    zone = checkin_zone(checkin, org_tz)
    occurrence = latest_occurrence(checkin.weekday, checkin.local_time, zone, now)
    return since < occurrence <= now


def next_run(checkin: Checkin, org_tz: ZoneInfo, now: datetime) -> datetime:
    """Its first occurrence after now, or after `last_run_at` if a change of schedule
    moved that ahead of now (see `moved_last_run`)."""
    since = as_utc(checkin.last_run_at or checkin.created_at)
    zone = checkin_zone(checkin, org_tz)
    return next_occurrence(checkin.weekday, checkin.local_time, zone, max(now, since))


def moved_last_run(checkin: Checkin, before: Checkin, org_tz: ZoneInfo) -> datetime | None:
    """The `last_run_at` that keeps this week's run counted after `before` became `checkin`.

    The occurrence already run is the same occurrence on the same local date in the new
    `timezone` (or `local_time`): a team moved to a zone further west after its prompt
    went out would otherwise be prompted again that day. If that instant is later than
    the run, it becomes `last_run_at`, so `is_due` skips it and the next run is a week
    on; None when nothing moves (never run, a new weekday, or the same occurrence is no
    later).
    """
    if before.last_run_at is None or checkin.weekday != before.weekday:
        return None
    last_run = as_utc(before.last_run_at)
    old_zone = checkin_zone(before, org_tz)
    served = latest_occurrence(before.weekday, before.local_time, old_zone, last_run)
    day = served.astimezone(old_zone).date()
    at = parse_local_time(checkin.local_time)
    same = occurrence_on(day, at, checkin_zone(checkin, org_tz))
    return same if same > last_run else None


def last_run_is(previous: datetime | None) -> Any:
    """A WHERE clause: the check-in's `last_run_at` is still `previous`."""
    if previous is None:
        return col(Checkin.last_run_at).is_(None)
    return col(Checkin.last_run_at) == previous


async def reschedule(
    session: AsyncSession, checkin: Checkin, changes: dict[str, Any], org_tz: ZoneInfo
) -> bool:
    """Write `changes` (fields of the check-in) and the `last_run_at` they move, only if it
    has not run since it was read (False otherwise, nothing written): like the scheduler's
    claim, so a run and a change of timezone never both go by a stale `last_run_at`."""
    changed = Checkin(**{**checkin.model_dump(), **changes})
    values = dict(changes)
    moved = moved_last_run(changed, checkin, org_tz)
    if moved is not None:
        values["last_run_at"] = moved
    result = await session.exec(
        update(Checkin)
        .where(col(Checkin.id) == checkin.id, last_run_is(checkin.last_run_at))
        .values(**values)
    )
    return bool(result.rowcount == 1)
