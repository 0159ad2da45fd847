"""The organizing rows of the scale databases (bench/seed_scale.py): custom fields and
their values, polls and answers, events with one occurrence each and RSVPs, a check-in per
team, audit events, and outgoing webhook subscriptions with their deliveries. Poll 1 and
event 1 hang off announcement 1 (the widest) and are answered by a share of its
recipients; every other poll and event has 10 answers."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from bench.seed_scale import CITIES, YEAR, at

if TYPE_CHECKING:
    from bench.seed_scale import Scale, Writer

FIELDS = (
    ("county", "choice", '["' + '", "'.join(CITIES) + '"]'),
    ("shift", "choice", '["morning", "afternoon", "evening"]'),
    ("joined_on", "date", None),
    ("donations", "number", None),
    ("notes", "text", None),
)
OPTIONS = '["Yes", "No", "Maybe"]'
ANSWERS = ("yes",) * 5 + ("no",) * 2 + ("maybe",) * 2 + (None,) * 3
AUDIT = ("sign_in",) * 6 + ("sign_in_failed", "sign_out", "key_created", "user_updated")
WEBHOOK_EVENTS = ("message.received", "message.status")
SMALL = 10  # answers per poll and invitations per event after the first


def seed(w: Writer, rng: random.Random, scale: Scale, wide: Sequence[int]) -> None:
    n = scale.supporters
    crowd = list(wide) or list(range(1, n + 1))
    _fields(w, rng, scale)
    _polls(w, rng, scale, crowd)
    _events(w, rng, scale, crowd)
    w.insert(
        "checkins",
        ("id", "team_id", "weekday", "local_time", "prompt", "inactive_days", "created_at"),
        (
            (t, t, t % 7, "18:00", "How did this week go? Reply with one word.", 14, at(0))
            for t in range(1, scale.teams + 1)
        ),
    )
    w.insert(
        "audit_events",
        ("id", "at", "actor", "action", "target", "ip"),
        (
            (
                i,
                at(i * (YEAR // max(scale.audit_events, 1))),
                f"user:{1 + i % 3}",
                action,
                None,
                None,
            )
            for i, action in ((i, rng.choice(AUDIT)) for i in range(1, scale.audit_events + 1))
        ),
    )
    _webhooks(w, rng, scale)


def _fields(w: Writer, rng: random.Random, scale: Scale) -> None:
    fields = FIELDS[: scale.fields]
    w.insert(
        "custom_fields",
        ("id", "name", "type", "choices", "created_at"),
        ((i, name, kind, choices, at(0)) for i, (name, kind, choices) in enumerate(fields, 1)),
    )

    def value(kind: str, i: int) -> str:
        if kind == "choice":
            return CITIES[i % len(CITIES)] if i == 1 else rng.choice(("morning", "evening"))
        if kind == "date":
            return f"2026-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"
        if kind == "number":
            return str(rng.randrange(5, 500))
        return rng.choice(("has a car", "speaks Spanish", "night shifts"))

    def values() -> Iterator[tuple[int, int, str]]:
        for sid in range(1, scale.supporters + 1):
            for i, (_, kind, _) in enumerate(fields, 1):
                if rng.random() < 0.5:
                    yield sid, i, CITIES[sid % len(CITIES)] if i == 1 else value(kind, i)

    w.insert("supporter_field_values", ("supporter_id", "field_id", "value"), values())


def _answerers(rng: random.Random, scale: Scale, crowd: list[int], first: bool) -> list[int]:
    if first:
        return sorted(rng.sample(crowd, int(len(crowd) * scale.answered_share)))
    return sorted(rng.sample(range(1, scale.supporters + 1), SMALL))


def _polls(w: Writer, rng: random.Random, scale: Scale, crowd: list[int]) -> None:
    when = [YEAR // 2 + rng.randrange(YEAR // 2) for _ in range(scale.polls)]
    w.insert(
        "polls",
        ("id", "question", "options", "announcement_id", "closed", "created_at"),
        (
            (
                p,
                f"Poll {p}: can you make the rally?",
                OPTIONS,
                (p - 1) % scale.announcements + 1 if scale.announcements else None,
                int(p % 4 == 0),
                at(when[p - 1]),
            )
            for p in range(1, scale.polls + 1)
        ),
    )

    def answers() -> Iterator[tuple[Any, ...]]:
        row = 0
        for p in range(1, scale.polls + 1):
            for sid in _answerers(rng, scale, crowd, p == 1):
                row += 1
                yield row, p, sid, rng.randrange(3), "sms", at(when[p - 1] + rng.randrange(7200))

    w.insert(
        "poll_answers",
        ("id", "poll_id", "supporter_id", "option_index", "channel", "answered_at"),
        answers(),
    )


def _events(w: Writer, rng: random.Random, scale: Scale, crowd: list[int]) -> None:
    # Spread over the year and the two months after it (some still to come).
    starts = [YEAR // 4 + rng.randrange(YEAR) for _ in range(scale.events)]
    w.insert(
        "events",
        ("id", "title", "kind", "starts_at", "duration_minutes", "location_url", "audience")
        + ("announcement_id", "created_at", "updated_at"),
        (
            (
                e,
                f"{('Canvass', 'Phone bank', 'Training')[e % 3]} {e}",
                ("call", "call", "training")[e % 3],
                at(starts[e - 1]),
                90,
                "https://meet.example.org/rally",
                '{"all": true}',
                (e - 1) % scale.announcements + 1 if scale.announcements else None,
                at(starts[e - 1] - 14 * 86_400),
                at(starts[e - 1] - 14 * 86_400),
            )
            for e in range(1, scale.events + 1)
        ),
    )
    w.insert(
        "event_occurrences",
        ("id", "event_id", "starts_at", "created_at"),
        (
            (e, e, at(starts[e - 1]), at(starts[e - 1] - 14 * 86_400))
            for e in range(1, scale.events + 1)
        ),
    )

    def rsvps() -> Iterator[tuple[Any, ...]]:
        row = 0
        for e in range(1, scale.events + 1):
            invited = starts[e - 1] - 14 * 86_400
            for sid in _answerers(rng, scale, crowd, e == 1):
                row += 1
                answer = rng.choice(ANSWERS)
                came = answer == "yes" and rng.random() < 0.6
                yield (
                    *(row, e, e, sid, answer, at(invited + 3600) if answer else None),
                    *("sms" if answer else None, int(came)),
                    *(at(starts[e - 1]) if came else None, at(invited)),
                )

    w.insert(
        "event_rsvps",
        ("id", "event_id", "occurrence_id", "supporter_id", "answer", "answered_at", "channel")
        + ("attended", "attended_at", "invited_at"),
        rsvps(),
    )


def _webhooks(w: Writer, rng: random.Random, scale: Scale) -> None:
    w.insert(
        "webhook_subscriptions",
        ("id", "url", "events", "secret", "created_at", "consecutive_failures"),
        (
            (s, f"https://crm.example.org/hooks/{s}", f",{kind},", f"{s:064x}", at(0), 0)
            for s, kind in enumerate(WEBHOOK_EVENTS, 1)
        ),
    )
    total = scale.webhook_deliveries

    def deliveries() -> Iterator[tuple[Any, ...]]:
        for d in range(1, total + 1):
            when = YEAR // 2 + d * (YEAR // 2) // (total + 1)
            sub = 1 if rng.random() < 0.7 else 2
            status = "delivered" if rng.random() < 0.97 else "failed"
            yield (
                *(d, sub, WEBHOOK_EVENTS[sub - 1], rng.randrange(1, scale.supporters + 1)),
                *(None, "sms", "delivered" if sub == 2 else None, status, 1),
                *(200 if status == "delivered" else 500, at(when)),
                at(when + 1) if status == "delivered" else None,
            )

    w.insert(
        "webhook_deliveries",
        ("id", "subscription_id", "event", "supporter_id", "message_id", "channel")
        + ("message_status", "status", "attempts", "response_status", "created_at")
        + ("delivered_at",),
        deliveries(),
    )
