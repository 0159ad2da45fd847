"""The adapter protocol and the provider-neutral values that cross it.

Nothing shaped like a provider's payload leaves `channels/`: adapters turn webhooks
into `InboundMessage` / `StatusUpdate` / `ChannelOptOut` values and take
`OutboundMessage` values to send.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, runtime_checkable

Channel = Literal["sms", "whatsapp", "telegram", "email", "signal"]
ALL_CHANNELS: tuple[Channel, ...] = ("sms", "whatsapp", "telegram", "email", "signal")
# Injected time for adapters that need "now" (Twilio's signature grace, the fakes).
Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


# The closed set of delivery statuses a provider callback maps to.
DeliveryStatus = Literal["queued", "sent", "delivered", "read", "failed", "undelivered"]


@dataclass(frozen=True)
class WebhookRequest:
    """The gateway's own frozen copy of an HTTP request, so adapters never import FastAPI.

    `url` is the URL the provider signed: the public base URL + path + query string.
    `headers` has lower-cased names. `form` is the decoded urlencoded body (in order,
    repeated names kept) or None when the body is not a form.
    """

    method: str
    url: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes
    form: tuple[tuple[str, str], ...] | None = None
    # The sub-path after /webhooks/<provider>, e.g. "status" for /webhooks/twilio/status.
    kind: str = ""
    # For a provider that signs nothing (Africa's Talking: `secret_in_path`), the secret
    # segment of its callback URL, /webhooks/<provider>/<secret>[/<kind>]; `path` and `url`
    # then show "<secret>" in its place, so nothing that logs them can leak it.
    path_secret: str = field(default="", repr=False)


@dataclass(frozen=True)
class Attachment:
    content_type: str | None = None
    url: str | None = None
    media_id: str | None = None
    filename: str | None = None
    size: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}

    @classmethod
    def from_dict(cls, stored: Mapping[str, Any]) -> Attachment:
        """The attachment `as_dict` stored; keys it does not know are ignored."""
        return cls(**{f.name: stored.get(f.name) for f in fields(cls)})


@dataclass(frozen=True)
class MediaContent:
    """The bytes of one inbound attachment, fetched from the provider that received it."""

    content: bytes
    content_type: str | None = None
    filename: str | None = None


@dataclass(frozen=True)
class InboundMessage:
    channel: Channel
    address: str  # canonical: E.164, chat id, lower-cased email
    provider_message_id: str
    body: str
    received_at: datetime | None = None
    attachments: tuple[Attachment, ...] = ()
    profile_name: str | None = None
    raw: str | None = None  # the provider's payload for audit
    # Email threading and subject.
    subject: str | None = None
    email_message_id: str | None = None
    in_reply_to: str | None = None
    references: str | None = None
    # Telegram `/start <payload>` deep-link payload (links a chat to a supporter).
    start_payload: str | None = None
    # Whether the sender is who the message says (email, when the listener checks: see
    # channels/email/sender_auth.py); None when not checked. False: store it, act on nothing.
    sender_verified: bool | None = None


@dataclass(frozen=True)
class StatusUpdate:
    channel: Channel
    provider_message_id: str
    status: DeliveryStatus
    error_code: str | None = None
    error_message: str | None = None
    occurred_at: datetime | None = None
    raw: str | None = None
    # For failed/undelivered: the adapter's classification of the provider error code
    # (e.g. WindowClosed for WhatsApp 131047), so routing can fall back or opt out.
    failure: SendError | None = None
    # For reports anyone could send (an email bounce): the addresses the report is about.
    # Routing applies it only to an attempt sent to one of them, never keeps it for later.
    recipients: tuple[str, ...] = ()


@dataclass(frozen=True)
class ChannelOptOut:
    """The provider tells us the recipient left the channel (e.g. blocked the bot)."""

    channel: Channel
    address: str
    reason: str
    provider_event_id: str | None = None
    opted_out: bool = True  # False: they came back (e.g. unblocked the bot)


WebhookEvent = InboundMessage | StatusUpdate | ChannelOptOut


@dataclass(frozen=True)
class Template:
    """An approved WhatsApp template for use outside the 24 h window."""

    name: str
    language: str = "en"
    variables: Mapping[str, str] = field(default_factory=dict)
    content_sid: str | None = None  # Twilio Content API SID


@dataclass(frozen=True)
class OutboundMedia:
    """A file to send, by a public URL the provider fetches (or we fetch, for email)."""

    url: str
    content_type: str | None = None
    filename: str | None = None

    @property
    def kind(self) -> Literal["image", "audio", "video", "document"]:
        """What the file is, from its content type (a document when unknown)."""
        major = (self.content_type or "").split("/", 1)[0].lower()
        if major in ("image", "audio", "video"):
            return major  # type: ignore[return-value]
        return "document"


@dataclass(frozen=True)
class FileAttachment:
    """A file sent with a message (a calendar invitation): channels that carry files (email)
    attach it; the others send the text alone."""

    filename: str
    content_type: str  # the full type with parameters, e.g. "text/calendar; method=REQUEST"
    data: bytes


@dataclass(frozen=True)
class OutboundMessage:
    message_id: int
    channel: Channel
    to: str
    body: str
    subject: str | None = None
    template: Template | None = None
    media_urls: Sequence[str] = ()
    # The same files with what is known of them (content type, name); an adapter sends
    # them as its channel can (routing sends a link instead where it cannot).
    media: Sequence[OutboundMedia] = ()
    # Email threading: the Message-ID we give this mail and the thread it answers.
    email_message_id: str | None = None
    in_reply_to: str | None = None
    references: str | None = None
    files: Sequence[FileAttachment] = ()

    def media_items(self) -> list[OutboundMedia]:
        """`media`, or the bare `media_urls` when only they were given."""
        return list(self.media) or [OutboundMedia(url) for url in self.media_urls]


@dataclass(frozen=True)
class SendResult:
    provider_message_id: str
    status: DeliveryStatus = "sent"
    segments: int | None = None


@dataclass(frozen=True)
class Capabilities:
    max_length: int | None
    media: bool
    needs_open_window: bool = False  # free text only within 24 h of the last inbound


@dataclass(frozen=True)
class WebhookResponse:
    status_code: int = 200
    body: str = ""
    media_type: str = "text/plain"


class InvalidSignature(Exception):
    """The webhook is not from the provider: answer 403 and store nothing."""


class MalformedPayload(Exception):
    """Signed, but not a payload we understand: answer 400 and store nothing."""


class SendError(Exception):
    """A send that did not go through. `retryable` and `fallback` steer the dispatcher."""

    retryable = False
    fallback = True

    def __init__(self, message: str = "", *, code: str | None = None) -> None:
        super().__init__(message or self.__class__.__name__)
        self.code = code


class Throttled(SendError):
    retryable = True

    def __init__(
        self, message: str = "", *, retry_after: float | None = None, code: str | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class ProviderUnavailable(SendError):
    retryable = True


class RecipientOptedOut(SendError):
    """The recipient opted out at the provider (e.g. Twilio 21610, Telegram block)."""


class InvalidRecipient(SendError):
    pass


class WindowClosed(SendError):
    """WhatsApp: free text outside the 24 h customer-service window."""


class ChannelMisconfigured(SendError):
    pass


SEND_ERRORS: dict[str, type[SendError]] = {
    cls.__name__: cls
    for cls in (
        SendError,
        Throttled,
        ProviderUnavailable,
        RecipientOptedOut,
        InvalidRecipient,
        WindowClosed,
        ChannelMisconfigured,
    )
}


class MediaError(Exception):
    """An attachment's bytes could not be fetched. The message says why and never holds a
    URL or a token (Telegram's file URLs contain the bot token)."""


class MediaGone(MediaError):
    """The provider does not have it (any more): expired, deleted or an unknown id."""


class MediaTooLarge(MediaError):
    """Over the size limit: refused from the declared size, or once that many bytes came."""


class MediaUnavailable(MediaError):
    """The provider was unreachable, too slow, failed, or refused our credentials."""


@runtime_checkable
class ChannelAdapter(Protocol):
    """One provider. `provider` names its webhook path: POST /webhooks/<provider>[/<kind>]."""

    provider: str
    channels: tuple[Channel, ...]

    def verify(self, request: WebhookRequest) -> None:
        """Raise InvalidSignature unless the request is the provider's. Runs before parse."""

    def parse(self, request: WebhookRequest) -> list[WebhookEvent]:
        """Pure: no I/O. Raise MalformedPayload for signed garbage."""

    def accepted_response(self, request: WebhookRequest) -> WebhookResponse:
        """What to answer once the events are stored."""

    def capabilities(self, channel: Channel) -> Capabilities: ...

    def sender_key(self, channel: Channel) -> str:
        """The rate-limited sender (number, phone number id, bot, SMTP account)."""

    async def send(self, message: OutboundMessage) -> SendResult:
        """Send or raise a SendError subclass."""

    async def aclose(self) -> None: ...


class HandshakeAdapter(Protocol):
    """An adapter that answers a GET verification handshake (Meta)."""

    def handshake(self, request: WebhookRequest) -> WebhookResponse: ...


class RateMetered(Protocol):
    """An adapter whose provider counts some sends as more than one unit of the sender's
    rate (Twilio: an SMS's segments). Without `rate_units`, every send is one unit."""

    def rate_units(self, message: OutboundMessage) -> int:
        """How many units of the sender's rate sending `message` uses (at least 1)."""


@runtime_checkable
class BotDirectory(Protocol):
    """An adapter whose bot has a public username that deep links name (Telegram)."""

    async def bot_username(self) -> str | None:
        """The username, asked of the provider once and kept; None while that fails."""


@runtime_checkable
class MediaSource(Protocol):
    """An adapter that can fetch the bytes of the inbound attachments it parsed (only their
    metadata is stored)."""

    def can_fetch(self, channel: Channel, attachment: Attachment) -> bool:
        """Whether `attachment`, of a message received on `channel`, is this provider's."""

    async def fetch_media(self, attachment: Attachment, *, max_bytes: int) -> MediaContent:
        """The bytes, read no further than `max_bytes`, or a MediaError subclass."""


@runtime_checkable
class SentLookup(Protocol):
    """An adapter whose provider can list the messages it took (Twilio). Before a send that
    a crash interrupted (the provider's answer was never stored) goes out again, the
    dispatcher asks, so a message the provider did take is not sent twice."""

    async def find_sent(self, message: OutboundMessage, since: datetime) -> list[str]:
        """Provider ids of messages to `message.to` with the same content, created at or
        after `since` (newest first); raises SendError when the provider cannot say."""
