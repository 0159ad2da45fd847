"""signal-cli-rest-api envelopes turned into our events: pure functions, no I/O.

Both receive modes carry the same JSON object per envelope, `{"envelope": {...},
"account": "+1…"}`: json-rpc mode pushes one per websocket text frame, normal/native mode
answers GET /v1/receive/{number} with a JSON array of them. A `dataMessage` with text or
attachments is an inbound message; a `receiptMessage` moves the messages we sent (their
ids are the send timestamps) to delivered or read. Typing, sync, call, story and group
traffic is nothing a supporter said to us, and is skipped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from channels.base import (
    Attachment,
    DeliveryStatus,
    InboundMessage,
    MalformedPayload,
    StatusUpdate,
    WebhookEvent,
)

log = logging.getLogger(__name__)

E164 = re.compile(r"^\+[1-9]\d{1,14}$")
UUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
# A Signal username: a nickname of 3-32 letters, digits or _, a dot, a 2-10 digit number.
USERNAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{2,31}\.\d{2,10}$")
MAX_TIMESTAMP = 10**15  # ms since the epoch: well past year 30000


def canonical_address(raw: str) -> str | None:
    """An address as stored: E.164, a lower-cased username or UUID; None if none of those."""
    text = raw.strip()
    if E164.match(text):
        return text
    if USERNAME.match(text) or UUID.match(text):
        return text.lower()
    return None


def _timestamp(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, int) and 0 < value < MAX_TIMESTAMP:
        return value
    return None


def _when(timestamp: int) -> datetime:
    return datetime.fromtimestamp(timestamp / 1000, UTC)


def sender_address(envelope: Mapping[str, Any]) -> str | None:
    """The sender's number when it is shown, else its UUID (a sender may hide its number)."""
    for key in ("sourceNumber", "source", "sourceUuid"):
        value = envelope.get(key)
        if isinstance(value, str) and (address := canonical_address(value)):
            return address
    return None


def message_id(envelope: Mapping[str, Any], address: str, timestamp: int) -> str:
    """The id an inbound message is stored under: Signal's message timestamp, which the
    sender's client sets, qualified by the sender's account UUID (never the number, which
    a plain column would then hold). Redelivery of the same message gives the same id."""
    uuid = envelope.get("sourceUuid")
    if isinstance(uuid, str) and UUID.match(uuid):
        who = uuid.lower()
    else:
        who = hashlib.sha256(address.encode()).hexdigest()[:32]
    return f"{who}:{timestamp}"


def _attachments(data: Mapping[str, Any]) -> tuple[Attachment, ...]:
    found = []
    for item in data.get("attachments") or ():
        if not isinstance(item, Mapping) or not isinstance(item.get("id"), str):
            continue
        size = item.get("size")
        found.append(
            Attachment(
                content_type=item.get("contentType") or None,
                media_id=item["id"],
                filename=item.get("filename") or None,
                size=size if isinstance(size, int) and not isinstance(size, bool) else None,
            )
        )
    return tuple(found)


def _inbound(
    envelope: Mapping[str, Any], data: Mapping[str, Any], raw: str
) -> InboundMessage | None:
    if data.get("groupInfo") or data.get("groupV2") or data.get("reaction"):
        return None  # group traffic and reactions are not a message to us
    text = data.get("message")
    body = text if isinstance(text, str) else ""
    attachments = _attachments(data)
    if not body and not attachments:
        return None  # e.g. a remote delete, a profile key update
    address = sender_address(envelope)
    timestamp = _timestamp(envelope.get("timestamp")) or _timestamp(data.get("timestamp"))
    if address is None or timestamp is None:
        raise MalformedPayload("a Signal dataMessage without a usable source or timestamp")
    name = envelope.get("sourceName")
    return InboundMessage(
        channel="signal",
        address=address,
        provider_message_id=message_id(envelope, address, timestamp),
        body=body,
        received_at=_when(timestamp),
        attachments=attachments,
        profile_name=name if isinstance(name, str) and name.strip() else None,
        raw=raw,
    )


def sender_identities(envelope: Mapping[str, Any]) -> tuple[str, ...]:
    """Every address the envelope's sender is known by here: number and UUID."""
    found: list[str] = []
    for key in ("sourceNumber", "source", "sourceUuid"):
        value = envelope.get(key)
        if isinstance(value, str) and (address := canonical_address(value)):
            if address not in found:
                found.append(address)
    return tuple(found)


def _receipts(
    envelope: Mapping[str, Any], receipt: Mapping[str, Any], raw: str
) -> list[StatusUpdate]:
    # A receipt counts only for a message we sent to its sender (`recipients`): another
    # account's receipt whose timestamp happens to match one of ours moves nothing, and the
    # receipts for what the account's own phone sent (a linked device gets those) are
    # dropped rather than kept for a send that will never be ours.
    senders = sender_identities(envelope)
    status: DeliveryStatus
    if receipt.get("isRead") or receipt.get("isViewed"):
        status = "read"
    elif receipt.get("isDelivery"):
        status = "delivered"
    else:
        log.warning("signal receipt of an unknown kind; ignored")
        return []
    when = _timestamp(receipt.get("when"))
    updates = []
    for value in receipt.get("timestamps") or ():
        sent = _timestamp(value)
        if sent is not None:
            updates.append(
                StatusUpdate(
                    channel="signal",
                    provider_message_id=str(sent),
                    status=status,
                    occurred_at=_when(when) if when else None,
                    raw=raw,
                    recipients=senders,
                )
            )
    return updates


def envelope_events(item: object, *, account: str | None = None) -> list[WebhookEvent]:
    """The events in one `{"envelope": …, "account": …}` object (none for traffic that is
    not a message or receipt). An envelope for another account is skipped."""
    if not isinstance(item, Mapping):
        raise MalformedPayload("a Signal envelope is a JSON object")
    if "error" in item and "envelope" not in item:
        # The API's own error, e.g. signal-cli gone: nothing was received.
        log.warning("signal-cli-rest-api reported a receive error")
        return []
    envelope = item.get("envelope")
    if not isinstance(envelope, Mapping):
        raise MalformedPayload("no envelope")
    if account is not None and item.get("account") not in (None, account):
        return []
    raw = json.dumps(item, ensure_ascii=False, separators=(",", ":"))
    data = envelope.get("dataMessage")
    if isinstance(data, Mapping):
        inbound = _inbound(envelope, data, raw)
        return [inbound] if inbound is not None else []
    receipt = envelope.get("receiptMessage")
    if isinstance(receipt, Mapping):
        return list(_receipts(envelope, receipt, raw))
    return []


def parse_frame(frame: str | bytes, *, account: str | None = None) -> list[WebhookEvent]:
    """The events of one websocket text frame (json-rpc mode)."""
    try:
        item = json.loads(frame)
    except ValueError as exc:
        raise MalformedPayload("a Signal websocket frame that is not JSON") from exc
    return envelope_events(item, account=account)


def parse_receive_body(body: bytes, *, account: str | None = None) -> list[WebhookEvent]:
    """The events of a GET /v1/receive/{number} answer (normal mode): a JSON array of
    envelopes, served as text/plain. An envelope that cannot be read is skipped and logged,
    so that one bad envelope does not hold back the rest (the API has removed them all)."""
    try:
        items = json.loads(body) if body.strip() else []
    except ValueError as exc:
        raise MalformedPayload("a Signal receive answer that is not JSON") from exc
    if isinstance(items, Mapping):
        items = [items]
    if not isinstance(items, list):
        raise MalformedPayload("a Signal receive answer is a JSON array")
    events: list[WebhookEvent] = []
    for item in items:
        try:
            events.extend(envelope_events(item, account=account))
        except MalformedPayload as exc:
            log.warning("signal envelope skipped: %s", exc)
    return events
