"""signal-cli-rest-api's answers mapped to our SendErrors, in one place.

The API answers every failed send with 400 `{"error": "<signal-cli's text>"}`, except a
rate limit (429, with `challenge_tokens` for the captcha that lifts it). Newer versions
answer 201 with `errors.recipients[].reason` for the recipients that failed. The texts hold
phone numbers, so they are matched here and never copied into an error or a log line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from channels.base import (
    ChannelMisconfigured,
    InvalidRecipient,
    ProviderUnavailable,
    SendError,
    Throttled,
)

# signal-cli's result types for one recipient (SendMessageResult), as the API passes them.
REASONS: dict[str, type[SendError]] = {
    "UNREGISTERED_FAILURE": InvalidRecipient,
    "RATE_LIMIT_FAILURE": Throttled,
    "NETWORK_FAILURE": ProviderUnavailable,
    "IDENTITY_FAILURE": SendError,  # the safety number changed: a person must look
    "PROOF_REQUIRED_FAILURE": Throttled,  # Signal wants a captcha first
}
OUR_ACCOUNT_UNREGISTERED = re.compile(r"User (\S+) is not registered", re.IGNORECASE)
UNREGISTERED = re.compile(r"unregistered user|UnregisteredUser|not a registered", re.IGNORECASE)
BAD_RECIPIENT = re.compile(r"invalid (?:recipient|username|phone number)|username.*not found", re.I)
RATE_LIMITED = re.compile(r"rate.?limit|\b429\b|proof required", re.IGNORECASE)
UNTRUSTED = re.compile(r"untrusted identity|identity.*(?:changed|failure)", re.IGNORECASE)


def error_text(payload: object) -> str:
    if isinstance(payload, Mapping) and isinstance(payload.get("error"), str):
        return str(payload["error"])
    return ""


def classify_400(text: str, own_number: str) -> SendError:
    """The SendError for a 400 answer's `error` text."""
    own = OUR_ACCOUNT_UNREGISTERED.search(text)
    if own and own.group(1).rstrip(".") == own_number:
        return ChannelMisconfigured("signal: SIGNAL_NUMBER is not registered", code="unregistered")
    if "please provide a valid number" in text:
        return ChannelMisconfigured("signal: SIGNAL_NUMBER is not a valid number", code="400")
    if UNREGISTERED.search(text) or own:
        return InvalidRecipient("signal: the recipient is not on Signal", code="unregistered")
    if BAD_RECIPIENT.search(text):
        return InvalidRecipient("signal: the recipient address is not valid", code="400")
    if RATE_LIMITED.search(text):
        return Throttled("signal: rate limited", code="rate_limit")
    if UNTRUSTED.search(text):
        return SendError("signal: the recipient's safety number changed", code="identity")
    return SendError("signal: the API refused the message (HTTP 400)", code="400")


def classify_status(status_code: int, payload: object, own_number: str) -> SendError:
    """The SendError for a non-2xx answer to POST /v2/send."""
    if status_code == 429:
        return Throttled("signal: rate limited; a captcha challenge may be needed", code="429")
    if status_code >= 500:
        return ProviderUnavailable(f"signal: HTTP {status_code}", code=str(status_code))
    if status_code == 400:
        return classify_400(error_text(payload), own_number)
    if status_code in (401, 403, 404, 405):
        # A proxy refusing us, or a base URL that is no signal-cli-rest-api.
        return ChannelMisconfigured(f"signal: HTTP {status_code}", code=str(status_code))
    return SendError(f"signal: HTTP {status_code}", code=str(status_code))


def recipient_failure(payload: Mapping[str, Any]) -> SendError | None:
    """A 201 answer's per-recipient failure (we send to one recipient), if it has one."""
    errors = payload.get("errors")
    recipients = errors.get("recipients") if isinstance(errors, Mapping) else None
    for entry in recipients or ():
        if isinstance(entry, Mapping):
            reason = str(entry.get("reason") or "")
            cls = REASONS.get(reason, SendError)
            return cls(f"signal: {reason.lower() or 'failed'}", code=reason or "failed")
    return None
