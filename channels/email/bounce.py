"""Delivery status notifications (bounces, RFC 3464) into `StatusUpdate` values.

Pure: no I/O. A bounce names our mail by the Message-ID in its returned headers
(`text/rfc822-headers` or the whole `message/rfc822`, RFC 3462), which is the provider
message id of the email attempt. Only a final failure (`Action: failed`, with a 5.x.x
status, or a 4.x.x one the sending server gave up retrying) becomes an update; it lists
the recipients the report names, and routing applies it only to an attempt sent to one of
them, so a forged bounce for another address does nothing.
"""

from __future__ import annotations

import email
import email.policy
import logging
import re
from email.message import Message

from channels.base import InvalidRecipient, SendError, StatusUpdate

log = logging.getLogger(__name__)

MAX_DIAGNOSTIC = 160  # characters of the remote server's reason kept in the error
MAX_PROVIDER_ID = 200  # MessageAttempt.provider_message_id column width

# "smtp; 550 5.1.1 <a@b>: User unknown" → "<a@b>: User unknown"
_DIAGNOSTIC_TYPE = re.compile(r"^\s*[\w-]+\s*;\s*")
_REPLY_CODE = re.compile(r"^\d{3}[ -]")
# RFC 3463 classes 5 (permanent) and 4 (temporary): with `Action: failed` (RFC 3464
# 2.3.3) both mean the sending server has given up, e.g. 4.4.7 after days of retries.
_FAILED = re.compile(r"^[45]\.\d{1,3}\.\d{1,3}$")


def is_delivery_report(msg: Message) -> bool:
    return (
        msg.get_content_type() == "multipart/report"
        and str(msg.get_param("report-type", "")).lower() == "delivery-status"
    )


def _field(block: Message, name: str) -> str:
    return " ".join(str(block.get(name, "")).split())


def _address(value: str) -> str | None:
    """`rfc822; Dana@Example.net` → `dana@example.net` (other address types: None)."""
    kind, _, address = value.partition(";")
    address = address.strip().strip("<>").lower()
    if kind.strip().lower() != "rfc822" or address.count("@") != 1:
        return None
    return address


def _returned_message_id(msg: Message) -> str | None:
    """The Message-ID of the mail the report is about, from its returned headers."""
    for part in msg.walk():
        kind = part.get_content_type()
        headers: Message | str
        if kind == "text/rfc822-headers":
            payload = part.get_payload(decode=True)
            text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
            headers = email.message_from_string(text, policy=email.policy.default)
        elif kind == "message/rfc822" and isinstance(part.get_payload(), list):
            headers = part.get_payload(0)
        else:
            continue
        if not isinstance(headers, Message):
            continue
        value = " ".join(str(headers.get("message-id", "")).split())
        if value:
            return value if value.startswith("<") else f"<{value}>"
    return None


def _recipient_blocks(msg: Message) -> list[Message]:
    """The per-recipient field groups (the stdlib parses each group as a Message)."""
    for part in msg.walk():
        if part.get_content_type() == "message/delivery-status":
            blocks = part.get_payload()
            # The first group is about the message; the others, one per recipient.
            if isinstance(blocks, list):
                return [b for b in blocks if isinstance(b, Message) and "action" in b]
    return []


def _error_text(status: str, diagnostic: str) -> str:
    reason = _REPLY_CODE.sub("", _DIAGNOSTIC_TYPE.sub("", diagnostic), count=1).strip()
    if reason.startswith(status + " "):
        reason = reason[len(status) :].strip()
    if len(reason) > MAX_DIAGNOSTIC:
        reason = reason[: MAX_DIAGNOSTIC - 1].rstrip() + "…"
    return f"bounced: {status} {reason}".strip()


def _failure(status: str, text: str) -> SendError:
    # X.1.Y is about the address itself (no such mailbox, no such domain).
    if status.startswith("5.1."):
        return InvalidRecipient(text, code=status)
    return SendError(text, code=status)


def parse_bounce(msg: Message) -> list[StatusUpdate]:
    """The final failures a delivery report tells of; [] for anything else in it
    (delays, successes, a report about mail that is not ours to look up)."""
    message_id = _returned_message_id(msg)
    if message_id is None or len(message_id) > MAX_PROVIDER_ID:
        log.info("email bounce without a usable original Message-ID ignored")
        return []
    updates: list[StatusUpdate] = []
    for block in _recipient_blocks(msg):
        action = _field(block, "action").lower()
        status = _field(block, "status").split(" ")[0][:16]
        if action != "failed" or not _FAILED.match(status):
            # Delayed is not final; delivered/relayed/expanded change nothing.
            log.info("email report for %s: %s %s; no change", message_id, action[:16], status)
            continue
        named = (_field(block, "final-recipient"), _field(block, "original-recipient"))
        recipients = tuple(dict.fromkeys(a for a in map(_address, named) if a is not None))
        if not recipients:
            log.info("email bounce for %s names no rfc822 recipient; ignored", message_id)
            continue
        text = _error_text(status, _field(block, "diagnostic-code"))
        updates.append(
            StatusUpdate(
                channel="email",
                provider_message_id=message_id,
                status="undelivered",
                error_code=status,
                error_message=text,
                failure=_failure(status, text),
                recipients=recipients,
            )
        )
    return updates
