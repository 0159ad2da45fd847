"""Webhook events as spool payloads (one line of JSON) and back.

The spool keeps the events a verified request was parsed into, not the request itself:
one format for webhooks and inbound mail (whose sender check may need DNS at arrival),
and a replay that needs neither the adapter nor its settings as they were (a changed
public URL, a channel no longer configured). Every field is kept; a test round-trips
each event type with every field set, so a new field cannot be dropped unnoticed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any

from channels.base import (
    SEND_ERRORS,
    Attachment,
    ChannelOptOut,
    InboundMessage,
    SendError,
    StatusUpdate,
    Throttled,
    WebhookEvent,
)

EVENT_TYPES: dict[str, type[InboundMessage | StatusUpdate | ChannelOptOut]] = {
    "inbound": InboundMessage,
    "status": StatusUpdate,
    "opt_out": ChannelOptOut,
}
TYPE_NAMES = {cls: name for name, cls in EVENT_TYPES.items()}
DATETIMES = {"received_at", "occurred_at"}


class UnreadableRecord(ValueError):
    """A spool payload that is not the events this module wrote."""


def encode_events(events: Sequence[WebhookEvent], source: str) -> bytes:
    """`events` (from `source`, e.g. "twilio/status" or "smtp") as one line of JSON."""
    encoded = []
    for event in events:
        item: dict[str, Any] = {"type": TYPE_NAMES[type(event)]}
        for f in fields(event):
            item[f.name] = _encode_value(f.name, getattr(event, f.name))
        encoded.append(item)
    return json.dumps({"source": source, "events": encoded}, separators=(",", ":")).encode()


def decode_events(payload: bytes) -> tuple[str, list[WebhookEvent]]:
    """The source and events `encode_events` wrote (UnreadableRecord otherwise)."""
    try:
        document = json.loads(payload)
        source = str(document["source"])
        events: list[WebhookEvent] = []
        for item in document["events"]:
            cls = EVENT_TYPES[item["type"]]
            known = {f.name for f in fields(cls)}
            values = {k: _decode_value(k, v) for k, v in item.items() if k in known}
            events.append(cls(**values))
    except (ValueError, KeyError, TypeError) as exc:
        raise UnreadableRecord(type(exc).__name__) from None
    return source, events


def _encode_value(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in DATETIMES:
        return value.isoformat()
    if name == "attachments":
        return [a.as_dict() for a in value]
    if name == "recipients":
        return list(value)
    if name == "failure":
        failure: SendError = value
        return {
            "kind": type(failure).__name__,
            "message": str(failure),
            "code": failure.code,
            "retry_after": getattr(failure, "retry_after", None),
        }
    return value


def _decode_value(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in DATETIMES:
        return datetime.fromisoformat(value)
    if name == "attachments":
        return tuple(Attachment.from_dict(a) for a in value)
    if name == "recipients":
        return tuple(value)
    if name == "failure":
        cls = SEND_ERRORS.get(value["kind"], SendError)
        if cls is Throttled:
            return Throttled(value["message"], code=value["code"], retry_after=value["retry_after"])
        return cls(value["message"], code=value["code"])
    return value
