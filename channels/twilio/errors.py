"""Twilio's vocabularies mapped to ours: one dict for statuses, one for error codes.

Unknown values map to a safe default and are logged by the caller, never raised.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from channels.base import (
    ChannelMisconfigured,
    DeliveryStatus,
    InvalidRecipient,
    ProviderUnavailable,
    RecipientOptedOut,
    SendError,
    Throttled,
    WindowClosed,
)

# MessageStatus → our DeliveryStatus. "receiving"/"received" belong to inbound messages
# and carry nothing for an outbound one; they (and anything new) are skipped.
STATUSES: dict[str, DeliveryStatus] = {
    "queued": "queued",
    "accepted": "queued",
    "scheduled": "queued",
    "sending": "queued",
    "sent": "sent",
    "delivered": "delivered",
    "read": "read",
    "undelivered": "undelivered",
    "failed": "failed",
    "canceled": "failed",
}

# Error code → SendError class. Codes from the Messages API (21xxx, 20xxx) and from
# delivery callbacks (30xxx, 63xxx: WhatsApp).
ERRORS: dict[int, type[SendError]] = {
    # Account, credentials, sender: nothing a retry fixes.
    20003: ChannelMisconfigured,  # authentication failed
    20404: ChannelMisconfigured,  # resource not found (wrong account SID or base URL)
    21212: ChannelMisconfigured,  # invalid From number
    21408: ChannelMisconfigured,  # sending to this region is not enabled on the account
    21606: ChannelMisconfigured,  # From number cannot send to this destination
    21659: ChannelMisconfigured,  # From is not a Twilio number
    21660: ChannelMisconfigured,  # From does not belong to the account
    21703: ChannelMisconfigured,  # messaging service has no phone numbers
    21704: ChannelMisconfigured,  # messaging service has no usable sender
    30002: ChannelMisconfigured,  # account suspended
    63007: ChannelMisconfigured,  # no WhatsApp sender for the From address
    # Too fast.
    20429: Throttled,  # too many requests
    21611: Throttled,  # the sender's queue is full
    30001: Throttled,  # queue overflow
    63018: Throttled,  # WhatsApp rate limit for this sender
    # The recipient.
    21610: RecipientOptedOut,  # the recipient replied STOP
    21211: InvalidRecipient,  # invalid To number
    21612: InvalidRecipient,  # To not reachable on this channel
    21614: InvalidRecipient,  # To is not a mobile number
    30003: InvalidRecipient,  # unreachable handset
    30005: InvalidRecipient,  # unknown handset
    30006: InvalidRecipient,  # landline or unreachable carrier
    63003: InvalidRecipient,  # WhatsApp: the To address is not on WhatsApp
    63024: InvalidRecipient,  # WhatsApp: invalid recipient
    # WhatsApp 24 h customer-service window closed: a template is needed.
    63016: WindowClosed,
    # Transient on Twilio's side.
    30008: SendError,  # unknown error (permanent here: Twilio already retried)
    30007: SendError,  # filtered as spam by the carrier
}


MAX_CODE_DIGITS = 9


def parse_code(raw: object) -> int | None:
    """An error code as Twilio writes it (int, "30003", "" or None) as an int."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw if 0 < raw < 10**MAX_CODE_DIGITS else None
    # ASCII digits only ('²'.isdigit() is true too), and no more than a code can have: a
    # 5,000-digit "code" is junk (and beyond what int() will read).
    text = raw.strip() if isinstance(raw, str) else ""
    if text.isascii() and text.isdigit() and len(text) <= MAX_CODE_DIGITS:
        return int(text) or None
    return None


def classify(code: int | None, message: str = "") -> SendError:
    """The SendError a Twilio error code stands for; unknown codes are permanent."""
    cls = ERRORS.get(code, SendError) if code is not None else SendError
    text = f"twilio {code}: {message}" if code is not None else (message or "twilio error")
    return cls(text, code=str(code) if code is not None else None)


def classify_http(
    status_code: int, code: int | None, message: str, retry_after: float | None
) -> SendError:
    """The SendError for a Messages API error answer (HTTP status and Twilio's JSON)."""
    detail = message or f"HTTP {status_code}"
    code_text = str(code) if code is not None else None
    if status_code == 429 or code == 20429:
        return Throttled(f"twilio throttled: {detail}", retry_after=retry_after, code=code_text)
    if status_code >= 500:
        return ProviderUnavailable(f"twilio HTTP {status_code}: {detail}", code=code_text)
    error = classify(code, detail)
    if isinstance(error, Throttled):
        error.retry_after = retry_after
    elif type(error) is SendError and code not in ERRORS and status_code in (401, 403):
        # Credentials refused without a code we know: the configuration is wrong.
        return ChannelMisconfigured(f"twilio HTTP {status_code}: {detail}", code=code_text)
    return error


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """Retry-After as seconds: either delta-seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())
