"""The two callbacks Africa's Talking posts, as our events. Pure: no I/O.

Inbound SMS (the SMS app's "Incoming messages" callback): form `from`, `to`, `text`,
`date`, `id`, `linkId` (and `networkCode`). Delivery reports: form `id`, `status`,
`phoneNumber`, `networkCode`, `failureReason` (with Failed and Rejected), `retryCount`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache

import phonenumbers

from channels.africastalking.codes import STATUSES, failure_for
from channels.base import InboundMessage, MalformedPayload, StatusUpdate

log = logging.getLogger(__name__)

# error_code's column width (storage/models.py MessageAttempt.error_code).
MAX_CODE = 32

_AUDIT_JSON = json.JSONEncoder(ensure_ascii=False, sort_keys=True)


def form_json(form: Mapping[str, str]) -> str:
    """The form kept for audit (the secret is in the URL, so it is never in here)."""
    return _AUDIT_JSON.encode(dict(form))


def canonical_phone(raw: str) -> str:
    """E.164 from the `from` of an inbound SMS; MalformedPayload for anything else."""
    text = raw.strip()
    if text and not text.startswith("+"):
        text = "+" + text  # the number as Africa's Talking writes it, country code first
    canonical = _parsed_phone(text)
    if canonical is None:
        raise MalformedPayload("`from` is not a phone number")
    return canonical


@lru_cache(maxsize=4096)
def _parsed_phone(text: str) -> str | None:
    try:
        number = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        return None
    # Possible, not valid: the provider delivered from this number, so it exists even if
    # our copy of the numbering plan is older than the range it belongs to.
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def received_at(raw: str | None) -> datetime | None:
    """The inbound `date` ("2024-03-04 15:00:00" or ISO 8601 with Z); None if unreadable.
    Africa's Talking writes UTC."""
    if not raw:
        return None
    try:
        when = datetime.fromisoformat(raw.strip())
    except ValueError:
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


def inbound_message(form: Mapping[str, str]) -> InboundMessage:
    message_id = form.get("id", "").strip()
    sender = form.get("from", "")
    if not message_id or not sender.strip():
        raise MalformedPayload("`id` and `from` are required")
    return InboundMessage(
        channel="sms",
        address=canonical_phone(sender),
        provider_message_id=message_id,
        body=form.get("text", ""),
        received_at=received_at(form.get("date")),
        raw=form_json(form),
    )


def delivery_report(form: Mapping[str, str]) -> StatusUpdate | None:
    """The status update a delivery report makes; None for a status we do not know."""
    message_id = form.get("id", "").strip()
    raw_status = form.get("status", "").strip()
    if not message_id or not raw_status:
        raise MalformedPayload("`id` and `status` are required")
    status = STATUSES.get(raw_status)
    if status is None:
        log.warning("africastalking status %r for %s is unknown; ignored", raw_status, message_id)
        return None
    reason = form.get("failureReason", "").strip() or None
    failure = failure_for(reason) if status == "failed" else None
    return StatusUpdate(
        channel="sms",
        provider_message_id=message_id,
        status=status,
        error_code=reason[:MAX_CODE] if failure is not None and reason else None,
        error_message=(reason or raw_status) if failure is not None else None,
        raw=form_json(form),
        failure=failure,
    )
