"""What a parsed webhook event must be for the database to take it: text that UTF-8 can
encode (no lone surrogate) without NUL characters (PostgreSQL's text refuses them), and
ids no longer than their columns. A provider never sends anything else; a signed request
that does is answered 400 before anything is stored, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields, is_dataclass, replace
from typing import Any

from channels.base import InboundMessage, StatusUpdate, WebhookEvent

MailEvent = InboundMessage | StatusUpdate

# Column widths in storage/models.py of what events carry.
MAX_LENGTHS = {
    "provider_message_id": 200,
    "provider_event_id": 200,
    "address": 320,
    "error_code": 32,
    "email_message_id": 998,
    "in_reply_to": 998,
}


def _bad_text(value: str) -> str | None:
    if "\x00" in value:
        return "contains a NUL character"
    if value.isascii():  # a flag of the string: most webhook text needs no encoding
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid Unicode (a lone surrogate)"
    return None


# A dataclass's field names, per class (dataclasses.fields builds a tuple on each call).
_FIELDS: dict[type, tuple[str, ...]] = {}
# Values with no text in them.
_NO_TEXT = (type(None), bool, int, float)


def _field_names(kind: type) -> tuple[str, ...]:
    names = _FIELDS.get(kind)
    if names is None:
        names = _FIELDS[kind] = tuple(f.name for f in fields(kind))
    return names


def _problem(name: str, value: Any) -> str | None:
    if isinstance(value, _NO_TEXT):
        return None
    if isinstance(value, str):
        limit = MAX_LENGTHS.get(name)
        if limit is not None and len(value) > limit:
            return f"{name} is longer than {limit} characters"
        bad = _bad_text(value)
        return f"{name} {bad}" if bad else None
    if isinstance(value, tuple):
        for item in value:
            found = _problem(name, item)
            if found:
                return found
    elif is_dataclass(value) and not isinstance(value, type):
        for field in _field_names(type(value)):
            found = _problem(field, getattr(value, field))
            if found:
                return found
    return None


def unstorable(events: Sequence[WebhookEvent]) -> str | None:
    """Why these events cannot be stored as they are, or None when they can."""
    for event in events:
        found = _problem(type(event).__name__, event)
        if found:
            return found
    return None


def _clean(name: str, value: Any) -> Any:
    if isinstance(value, str):
        value = value.replace("\x00", "\ufffd")
        value = value.encode("utf-8", "replace").decode("utf-8")  # lone surrogates → "?"
        limit = MAX_LENGTHS.get(name)
        return value[:limit] if limit is not None else value
    if isinstance(value, tuple):
        return tuple(_clean(name, item) for item in value)
    if is_dataclass(value) and not isinstance(value, type):
        changes = {f.name: _clean(f.name, getattr(value, f.name)) for f in fields(value)}
        return replace(value, **changes)
    return value


def made_storable(events: list[MailEvent]) -> list[MailEvent]:
    """`events` with NUL characters and lone surrogates replaced and over-long ids cut, for
    mail: unlike a signed webhook (refused with 400), a mail is what a person wrote, and a
    stray NUL in it must not lose the rest."""
    if unstorable(events) is None:
        return events
    return [_clean(type(event).__name__, event) for event in events]
