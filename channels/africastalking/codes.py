"""Africa's Talking's vocabularies mapped to ours: one dict for the per-recipient status
codes of a send, one for delivery-report statuses, one for their failure reasons.

Unknown values map to a safe default (a permanent SendError, or no status change) and
are logged by the caller, never raised.
"""

from __future__ import annotations

from channels.base import (
    ChannelMisconfigured,
    DeliveryStatus,
    InvalidRecipient,
    ProviderUnavailable,
    RecipientOptedOut,
    SendError,
)

# SMSMessageData.Recipients[].statusCode → None (accepted: `messageId` is the provider
# id) or the SendError it stands for. From the SMS API reference ("statusCode") and the
# help centre's "Why did my messages fail?".
RECIPIENT_CODES: dict[int, type[SendError] | None] = {
    100: None,  # Processed
    101: None,  # Sent
    102: None,  # Queued
    # Held by Africa's Talking's risk checks (new accounts, suspicious content): the
    # operator has to talk to them; permanent here, so the message falls back.
    401: SendError,  # RiskHold
    402: ChannelMisconfigured,  # InvalidSenderId: AFRICASTALKING_SENDER_ID is not ours
    403: InvalidRecipient,  # InvalidPhoneNumber
    404: InvalidRecipient,  # UnsupportedNumberType
    405: ChannelMisconfigured,  # InsufficientBalance: top up the account
    # The recipient blocked this sender or all promotional messages: an opt-out, as
    # Twilio's 21610 is.
    406: RecipientOptedOut,  # UserInBlacklist
    407: InvalidRecipient,  # CouldNotRoute: no route to the recipient's network
    # A telco's do-not-disturb register (e.g. Nigeria's) refused a promotional route:
    # about the route, not a STOP to us, so no opt-out.
    409: SendError,  # DoNotDisturbRejection
    500: ProviderUnavailable,  # InternalServerError
    501: ProviderUnavailable,  # GatewayError
    502: ProviderUnavailable,  # RejectedByGateway
}

RECIPIENT_NAMES: dict[int, str] = {
    100: "Processed",
    101: "Sent",
    102: "Queued",
    401: "RiskHold",
    402: "InvalidSenderId",
    403: "InvalidPhoneNumber",
    404: "UnsupportedNumberType",
    405: "InsufficientBalance",
    406: "UserInBlacklist",
    407: "CouldNotRoute",
    409: "DoNotDisturbRejection",
    500: "InternalServerError",
    501: "GatewayError",
    502: "RejectedByGateway",
}

# Delivery report `status` → our DeliveryStatus. Sent, Submitted and Buffered are steps
# on the way (the telco has it); Success, Failed and Rejected are final.
STATUSES: dict[str, DeliveryStatus] = {
    "Sent": "sent",
    "Submitted": "sent",
    "Buffered": "sent",
    "Success": "delivered",
    "Failed": "failed",
    "Rejected": "failed",
}

# Delivery report `failureReason` (with Failed and Rejected) → the SendError it stands
# for, which routing uses to opt out (UserInBlackList) or fall back.
FAILURE_REASONS: dict[str, type[SendError]] = {
    "UserInBlackList": RecipientOptedOut,
    "UserInBlacklist": RecipientOptedOut,
    "UserDoesNotExist": InvalidRecipient,
    "UserIsInactive": InvalidRecipient,
    "UserAccountSuspended": InvalidRecipient,
    "NotNetworkSubscriber": InvalidRecipient,
    "NotNetworkSubcriber": InvalidRecipient,  # as the help centre spells it
    "InsufficientCredit": SendError,  # the subscriber's airtime, for premium messages
    "InvalidLinkId": SendError,
    "UserNotSubscribedToProduct": SendError,
    "DoNotDisturbRejection": SendError,
    "DeliveryFailure": SendError,
}


def parse_status_code(raw: object) -> int | None:
    """A statusCode as Africa's Talking writes it (101 or "101") as an int."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw if 0 <= raw < 1000 else None
    if isinstance(raw, str) and raw.strip().isascii() and raw.strip().isdigit():
        value = raw.strip()
        return int(value) if len(value) <= 3 else None
    return None


def recipient_error(code: int | None) -> SendError | None:
    """None when a recipient's statusCode means accepted, else its SendError. Codes we
    do not know: 5xx is the provider's trouble (retry), anything else permanent."""
    if code is not None and code in RECIPIENT_CODES:
        cls = RECIPIENT_CODES[code]
        if cls is None:
            return None
    elif code is not None and code >= 500:
        cls = ProviderUnavailable
    else:
        cls = SendError
    name = RECIPIENT_NAMES.get(code or 0, "unknown status")
    return cls(f"africastalking {code}: {name}", code=str(code) if code is not None else None)


def failure_for(reason: str | None) -> SendError:
    """The SendError a delivery report's failureReason stands for (permanent if unknown)."""
    cls = FAILURE_REASONS.get(reason or "", SendError)
    text = f"africastalking: {reason}" if reason else "africastalking: delivery failed"
    return cls(text, code=reason[:32] if reason else None)
