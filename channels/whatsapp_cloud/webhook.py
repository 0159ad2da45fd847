"""Meta webhook notifications → provider-neutral events (pure functions, no I/O)."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from datetime import UTC, datetime
from typing import Any

import phonenumbers
from pydantic import ValidationError

from channels.base import (
    Attachment,
    DeliveryStatus,
    InboundMessage,
    InvalidSignature,
    MalformedPayload,
    StatusUpdate,
    WebhookEvent,
    WebhookRequest,
)
from channels.whatsapp_cloud.errors import classify
from channels.whatsapp_cloud.models import (
    ChangeValue,
    Media,
    Notification,
    WaMessage,
    WaStatus,
)

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "x-hub-signature-256"
MEDIA_TYPES = ("image", "audio", "video", "document", "sticker")
# Meta's statuses → ours. "deleted" (the user deleted a message) and anything new are
# logged and skipped.
STATUS_MAP: dict[str, DeliveryStatus] = {
    "sent": "sent",
    "delivered": "delivered",
    "read": "read",
    "failed": "failed",
}


def signature_of(app_secret: str, body: bytes) -> str:
    """The X-Hub-Signature-256 value Meta sends for `body`."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(app_secret: str, request: WebhookRequest) -> None:
    given = request.headers.get(SIGNATURE_HEADER, "")
    if not given.startswith("sha256=") or len(given) != len("sha256=") + 64:
        raise InvalidSignature("missing or malformed X-Hub-Signature-256")
    # Over the bytes received: Meta escapes non-ASCII as \uXXXX, re-serialising would differ.
    expected = signature_of(app_secret, request.body)
    if not hmac.compare_digest(expected.encode(), given.lower().encode()):
        raise InvalidSignature("X-Hub-Signature-256 does not match")


def parse_notification(body: bytes, phone_number_id: str) -> list[WebhookEvent]:
    """Every message and status in a notification; raise MalformedPayload for garbage."""
    try:
        data = json.loads(body)
        notification = Notification.model_validate(data)
    except (ValueError, ValidationError) as exc:
        raise MalformedPayload(f"not a WhatsApp notification: {exc.__class__.__name__}") from exc
    if notification.object != "whatsapp_business_account":
        raise MalformedPayload(f"unexpected object {notification.object!r}")
    events: list[WebhookEvent] = []
    for entry in notification.entry:
        for change in entry.changes:
            if change.field != "messages":
                log.debug("ignoring WhatsApp change field %r", change.field)
                continue
            try:
                value = ChangeValue.model_validate(change.value)
            except ValidationError as exc:
                raise MalformedPayload("unreadable change value") from exc
            if value.metadata.phone_number_id not in (None, phone_number_id):
                # Another number of the same business account: not ours to answer.
                log.warning(
                    "ignoring WhatsApp change for phone number id %s",
                    value.metadata.phone_number_id,
                )
                continue
            events.extend(_messages(value))
            events.extend(_statuses(value))
    return events


def _timestamp(raw: str | None) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(raw), UTC) if raw else None
    except (ValueError, OverflowError, OSError):
        return None


def _e164(wa_id: str) -> str | None:
    digits = wa_id.strip().lstrip("+")
    if not digits.isdigit():
        return None
    try:
        number = phonenumbers.parse("+" + digits, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _audit(value: ChangeValue, key: str, item: dict[str, Any]) -> str:
    """The one message/status with its metadata: not the whole batch."""
    return json.dumps(
        {"metadata": value.metadata.model_dump(exclude_none=True), key: item},
        ensure_ascii=False,
        separators=(",", ":"),
    )


def _messages(value: ChangeValue) -> list[InboundMessage]:
    names = {c.wa_id: c.profile.name for c in value.contacts if c.wa_id and c.profile}
    out: list[InboundMessage] = []
    for item in value.messages:
        try:
            message = WaMessage.model_validate(item)
        except ValidationError:
            log.warning("skipping a WhatsApp message without a readable id")
            continue
        if not message.sender:
            log.info("skipping WhatsApp message %s: sender has no wa_id", message.id)
            continue
        address = _e164(message.sender)
        if address is None:
            log.warning("skipping WhatsApp message %s: sender is not a phone number", message.id)
            continue
        content = _content(message)
        if content is None:
            continue
        body, attachments = content
        out.append(
            InboundMessage(
                channel="whatsapp",
                address=address,
                provider_message_id=message.id,
                body=body,
                received_at=_timestamp(message.timestamp),
                attachments=attachments,
                profile_name=names.get(message.sender),
                raw=_audit(value, "message", item),
            )
        )
    return out


def _content(message: WaMessage) -> tuple[str, tuple[Attachment, ...]] | None:
    """Body and attachments of one message; None to skip it (a reaction removed)."""
    kind = message.type
    if kind == "text" and message.text is not None:
        return message.text.body, ()
    if kind in MEDIA_TYPES:
        media: Media | None = getattr(message, kind)
        if media is not None and media.id:
            attachment = Attachment(
                content_type=media.mime_type,
                media_id=media.id,
                filename=media.filename if kind == "document" else None,
            )
            return media.caption or "", (attachment,)
    if kind == "location" and message.location is not None:
        place = message.location
        where = ", ".join(part for part in (place.name, place.address) if part)
        body = f"location: {place.latitude},{place.longitude}"
        return (f"{body} ({where})" if where else body), ()
    if kind == "button" and message.button is not None:
        return message.button.text, ()
    if kind == "interactive" and message.interactive is not None:
        reply = message.interactive.button_reply or message.interactive.list_reply
        if reply is not None:
            return reply.title, ()
        kind = f"interactive.{message.interactive.type or 'unknown'}"
    if kind == "reaction" and message.reaction is not None:
        if not message.reaction.emoji:
            log.info("skipping WhatsApp reaction removal %s", message.id)
            return None
        return message.reaction.emoji, ()
    # Unsupported or unknown: keep it visible to the coordinator, never reject the batch.
    log.info("WhatsApp message %s has unsupported type %s", message.id, kind)
    return f"[unsupported message type: {kind}]", ()


def _statuses(value: ChangeValue) -> list[StatusUpdate]:
    out: list[StatusUpdate] = []
    for item in value.statuses:
        try:
            status = WaStatus.model_validate(item)
        except ValidationError:
            log.warning("skipping an unreadable WhatsApp status")
            continue
        ours = STATUS_MAP.get(status.status)
        if ours is None:
            log.info("skipping WhatsApp status %r for %s", status.status, status.id)
            continue
        error_code = error_message = None
        failure = None
        if status.errors:
            first = status.errors[0]
            error_code = str(first.code) if first.code is not None else None
            error_message = first.message or first.title
            details = first.error_data.details if first.error_data else None
            if details and details != error_message:
                error_message = f"{error_message}: {details}" if error_message else details
        if ours == "failed":
            code = status.errors[0].code if status.errors else None
            failure = classify(code, error_message or "failed")
        out.append(
            StatusUpdate(
                channel="whatsapp",
                provider_message_id=status.id,
                status=ours,
                error_code=error_code,
                error_message=error_message,
                occurred_at=_timestamp(status.timestamp),
                raw=_audit(value, "status", item),
                failure=failure,
            )
        )
    return out
