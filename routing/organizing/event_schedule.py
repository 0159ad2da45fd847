"""When an event happens: its recurrence rule (RFC 5545 RRULE, read by python-dateutil)
checked and expanded into occurrences for a bounded horizon."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dateutil.rrule import rrule, rrulestr

# Occurrences are written this far ahead, and at most this many per event.
HORIZON = timedelta(days=90)
MAX_OCCURRENCES = 200


class InvalidRecurrence(ValueError):
    """The recurrence is not an RRULE dateutil can read."""


def _rule_text(recurrence: str) -> str:
    text = recurrence.strip()
    if text.upper().startswith("RRULE:"):
        text = text[len("RRULE:") :]
    return text


def parse_recurrence(recurrence: str, starts_at: datetime) -> rrule:
    """The rule starting at `starts_at`; a bad rule (or one that is not a single RRULE)
    raises InvalidRecurrence saying why."""
    text = _rule_text(recurrence)
    if not text or "\n" in text or ":" in text:
        raise InvalidRecurrence("give one RRULE, e.g. FREQ=WEEKLY;COUNT=6")
    try:
        rule = rrulestr(text, dtstart=starts_at)
    except (ValueError, TypeError, KeyError, IndexError) as exc:  # dateutil's parse errors
        # The parser's message quotes the input; a 422 never echoes it.
        raise InvalidRecurrence("not a valid RRULE (RFC 5545), e.g. FREQ=WEEKLY;COUNT=6") from exc
    if not isinstance(rule, rrule):
        raise InvalidRecurrence("give one RRULE, e.g. FREQ=WEEKLY;COUNT=6")
    return rule


def normalized_recurrence(recurrence: str | None, starts_at: datetime) -> str | None:
    """The stored form ("FREQ=…", upper case), checked; None when there is none."""
    if recurrence is None or not recurrence.strip():
        return None
    parse_recurrence(recurrence, starts_at)
    return _rule_text(recurrence).upper()


def occurrence_starts(starts_at: datetime, recurrence: str | None, now: datetime) -> list[datetime]:
    """The event's start times, UTC: the first (DTSTART is always an instance) and, for a
    recurring event, the rule's others up to `HORIZON` past now (or past the first start
    when that is later), at most `MAX_OCCURRENCES`."""
    first = starts_at.astimezone(UTC)
    if not recurrence:
        return [first]
    rule = parse_recurrence(recurrence, starts_at)
    until = max(now, first) + HORIZON
    starts = [first]
    for start in rule:
        if len(starts) >= MAX_OCCURRENCES or start > until:
            break
        utc = start.astimezone(UTC)
        if utc != first:
            starts.append(utc)
    return starts
