"""Graph API / WhatsApp error codes mapped to our SendError family, in one table.

The same table classifies errors of a synchronous send (HTTP answer) and of a `failed`
status webhook (the usual way 131047 arrives). An unknown code is a permanent SendError:
the message falls back to the next channel rather than being retried blindly.
"""

from __future__ import annotations

import logging

from channels.base import (
    ChannelMisconfigured,
    InvalidRecipient,
    ProviderUnavailable,
    SendError,
    Throttled,
    WindowClosed,
)

log = logging.getLogger(__name__)

ERROR_CLASSES: dict[int, type[SendError]] = {
    # The 24 h customer-service window is closed: free text needs a template.
    131047: WindowClosed,
    # Undeliverable: not on WhatsApp, old app version, or the user can't be reached.
    131026: InvalidRecipient,
    131021: InvalidRecipient,  # recipient is the sender
    # Rate limits: retry later with backoff.
    4: Throttled,  # application request limit
    80007: Throttled,  # WABA rate limit
    130429: Throttled,  # cloud API throughput
    131048: Throttled,  # spam rate limit
    131056: Throttled,  # too many messages to this user from this number
    # Meta's side is having trouble: retry.
    1: ProviderUnavailable,  # API unknown
    2: ProviderUnavailable,  # API service
    131000: ProviderUnavailable,  # "something went wrong"
    131016: ProviderUnavailable,  # service overloaded
    133004: ProviderUnavailable,  # server temporarily unavailable
    # Our credentials, permissions or number are wrong: don't retry, fix the config.
    0: ChannelMisconfigured,  # AuthException
    3: ChannelMisconfigured,  # capability
    10: ChannelMisconfigured,  # permission denied
    190: ChannelMisconfigured,  # access token expired or invalid
    200: ChannelMisconfigured,  # permissions
    368: ChannelMisconfigured,  # temporarily blocked for policy violations
    131005: ChannelMisconfigured,  # access denied
    131031: ChannelMisconfigured,  # business account locked
    131042: ChannelMisconfigured,  # payment problem
    133010: ChannelMisconfigured,  # phone number not registered
    # The message itself is wrong: permanent, fall back.
    100: SendError,  # invalid parameter (see GRAPH_OBJECT_MISSING)
    131008: SendError,  # required parameter missing
    131009: SendError,  # parameter value invalid
    131051: SendError,  # unsupported message type
    131052: SendError,  # media download error
    131053: SendError,  # media upload error
    132000: SendError,  # template parameter count mismatch
    132001: SendError,  # template does not exist
    132005: SendError,  # template hydrated text too long
    132007: SendError,  # template format character policy violated
    132012: SendError,  # template parameter format mismatch
    132015: SendError,  # template paused
    132016: SendError,  # template disabled
}

# Code 100 with this subcode: "Object with ID … does not exist" — a wrong phone number id.
GRAPH_OBJECT_MISSING = 33


def error_class(code: int | None, subcode: int | None = None) -> type[SendError] | None:
    """The SendError class for a Graph error code, or None when the code is unknown."""
    if code == 100 and subcode == GRAPH_OBJECT_MISSING:
        return ChannelMisconfigured
    if code is None:
        return None
    return ERROR_CLASSES.get(code)


def classify(
    code: int | None,
    message: str,
    *,
    subcode: int | None = None,
    http_status: int | None = None,
    retry_after: float | None = None,
) -> SendError:
    """The SendError to raise (or attach to a failed status) for a Graph error."""
    cls = error_class(code, subcode)
    if cls is None:
        if http_status == 429:
            cls = Throttled
        elif http_status is not None and http_status >= 500:
            cls = ProviderUnavailable
        elif http_status == 401:
            cls = ChannelMisconfigured
        else:
            if code is not None:
                log.warning("unknown WhatsApp error code %s; treated as permanent", code)
            cls = SendError
    if http_status == 429 and cls is not Throttled:
        cls = Throttled
    text = f"WhatsApp error {code}: {message}" if code is not None else message
    code_text = str(code) if code is not None else None
    if cls is Throttled:
        return Throttled(text, retry_after=retry_after, code=code_text)
    return cls(text, code=code_text)
