"""What supporters are told about an event, worded in their own timezone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from routing.outbound.quiet_hours import zone

OPTIONS = ("Yes", "No", "Maybe")
ANSWERS = ("yes", "no", "maybe")


@dataclass(frozen=True)
class EventFacts:
    """What the texts say about an event (a plain value: routing needs no table row)."""

    title: str
    starts_at: datetime
    duration_minutes: int
    location_url: str | None
    description: str | None


def local_start(starts_at: datetime, timezone: str | None, default_timezone: str) -> str:
    """e.g. "Tue 5 Jan 2027, 18:00 CET": the start in the supporter's zone (else the org's)."""
    local = starts_at.astimezone(zone(timezone, default_timezone))
    return f"{local:%a} {local.day} {local:%b %Y, %H:%M} {local.tzname() or ''}".rstrip()


def _head(facts: EventFacts, when: str) -> list[str]:
    lines = [facts.title.strip(), when]
    if facts.location_url:
        lines.append(facts.location_url.strip())
    return lines


def invitation_text(facts: EventFacts, when: str) -> str:
    """The invitation: title, start, link, the numbered options and how to answer."""
    options = " ".join(f"{i}) {option}" for i, option in enumerate(OPTIONS, 1))
    return "\n".join([*_head(facts, when), options, "Reply with a number."])


def update_text(facts: EventFacts, when: str) -> str:
    return "\n".join(["Update: " + facts.title.strip(), when, *_head(facts, when)[2:]])


def cancel_text(facts: EventFacts, when: str) -> str:
    return f"Cancelled: {facts.title.strip()} ({when})."


def reminder_text(facts: EventFacts, when: str) -> str:
    return "\n".join(["Reminder: " + facts.title.strip(), when, *_head(facts, when)[2:]])


def confirmation_text(answer: str, title: str) -> str:
    """The short answer to an RSVP."""
    if answer == "yes":
        return f"Thanks, you're in for {title}."
    if answer == "waitlist":
        return f"{title} is full; you're on the wait list. We'll tell you if a place opens."
    if answer == "maybe":
        return f"Noted: maybe for {title}."
    return f"Noted: you can't make {title}."


def closed_text(title: str, cancelled: bool) -> str:
    """The answer to an RSVP that came too late: nothing changed."""
    if cancelled:
        return f"{title} was cancelled, so your answer was not recorded."
    return f"{title} has already started, so your answer was not recorded."
