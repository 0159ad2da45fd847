"""The event as an iCalendar file (RFC 5545), written by hand: one VEVENT, UTC times,
text escaped and lines folded at 75 octets."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from routing.organizing.event_text import EventFacts

PRODID = "-//Rallypoint//Events//EN"
# A location that is one web link (not a dial-in text) is also the event's URL.
LINK = re.compile(r"https?://[^\s\x00-\x1f\x7f]+")


def _escape(text: str) -> str:
    return (
        text.replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
        .replace("\r", "\\n")
    )


def _fold(line: str) -> str:
    """Lines longer than 75 octets continue on the next line after CRLF and a space,
    split between characters (never inside a UTF-8 sequence)."""
    out: list[str] = []
    current, size = "", 0
    for char in line:
        width = len(char.encode())
        if size + width > 75:
            out.append(current)
            current, size = " ", 1
        current += char
        size += width
    out.append(current)
    return "\r\n".join(out)


def _stamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def event_ics(
    facts: EventFacts,
    *,
    uid: str,
    recurrence: str | None,
    stamp: datetime,
    sequence: int = 0,
    method: str = "PUBLISH",
    cancelled: bool = False,
    organizer: str | None = None,
) -> str:
    """The VCALENDAR text. `method` REQUEST is what an email invitation carries."""
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        f"METHOD:{method}",
        "BEGIN:VEVENT",
        f"UID:{uid}",
        f"DTSTAMP:{_stamp(stamp)}",
        f"DTSTART:{_stamp(facts.starts_at)}",
        f"DTEND:{_stamp(facts.starts_at + timedelta(minutes=facts.duration_minutes))}",
        f"SEQUENCE:{sequence}",
        f"SUMMARY:{_escape(facts.title)}",
        f"STATUS:{'CANCELLED' if cancelled else 'CONFIRMED'}",
    ]
    if recurrence:
        lines.append(f"RRULE:{recurrence}")
    if facts.location_url:
        lines.append(f"LOCATION:{_escape(facts.location_url)}")
        if LINK.fullmatch(facts.location_url.strip()):
            lines.append(f"URL:{facts.location_url.strip()}")
    if facts.description:
        lines.append(f"DESCRIPTION:{_escape(facts.description)}")
    if organizer:
        lines.append(f"ORGANIZER:mailto:{organizer}")
    lines += ["END:VEVENT", "END:VCALENDAR"]
    return "\r\n".join(_fold(line) for line in lines) + "\r\n"
