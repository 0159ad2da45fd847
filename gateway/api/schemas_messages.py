"""Request and response bodies for conversations and messages."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, field_validator

from channels.base import Channel
from routing.outbound.spans import parse_span
from storage.models import MAX_ID, Message, MessageAttempt, MessageStatusEvent


class ConversationPublic(BaseModel):
    id: int
    supporter_id: int
    supporter_name: str
    last_message_at: datetime | None
    unread: bool
    unread_count: int
    status: str = Field(description="open, resolved or snoozed (a due snooze is open again)")
    snoozed_until: datetime | None = Field(None, description="while snoozed: when it returns")
    assigned_user_id: int | None = Field(None, description="the console user it is assigned to")
    created_at: datetime


class ConversationUpdate(BaseModel):
    """Any of: a new status (snoozed needs `snoozed_until`, ISO 8601 with offset), and the
    console user to assign it to (null: unassign)."""

    status: str | None = Field(None, description="open, resolved or snoozed")
    snoozed_until: datetime | None = None
    assigned_user_id: int | None = Field(None, ge=1, le=MAX_ID)


class NoteCreate(BaseModel):
    body: str = Field(min_length=1, max_length=10_000)


class NotePublic(BaseModel):
    id: int
    conversation_id: int
    author: str = Field(description='"user:<id>" or "key:<id>"')
    author_user_id: int | None
    body: str
    created_at: datetime


MEDIA_URL_HELP = "an http(s) URL of a file to send (its size is checked before queueing)"
MEDIA_ID_HELP = "the id of a file uploaded with POST /api/v1/media"
FALLBACK_AFTER = (
    "unless delivered or read within this span (90s, 15m, 6h, 2d), send it once more over "
    "the supporter's next usable channel"
)


def check_media_url(value: str | None) -> str | None:
    """http(s) with a host (pydantic names the field in the 422)."""
    if value is not None:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http or https URL with a host")
    return value


def check_fallback_after(value: str | None) -> str | None:
    """A span parse_span accepts (pydantic names the field in the 422)."""
    if value is not None:
        parse_span(value)
    return value


class OneOnOneCreate(BaseModel):
    body: str = Field(min_length=1, max_length=10_000)
    channel: Channel | None = Field(None, description="send over this channel only")
    subject: str | None = Field(None, max_length=998, description="email subject")
    fallback_after: str | None = Field(None, max_length=16, description=FALLBACK_AFTER)
    media_url: str | None = Field(None, max_length=2000, description=MEDIA_URL_HELP)
    media_id: int | None = Field(None, ge=1, le=MAX_ID, description=MEDIA_ID_HELP)

    _fallback_after = field_validator("fallback_after")(check_fallback_after)
    _media_url = field_validator("media_url")(check_media_url)


class AttemptPublic(BaseModel):
    channel: str
    address: str
    provider: str | None = Field(
        None, description="the provider that sent it: twilio, africastalking, …"
    )
    provider_message_id: str | None
    status: str
    error: str | None
    created_at: datetime


class StatusEventPublic(BaseModel):
    status: str
    channel: str | None
    error: str | None
    created_at: datetime


class MessagePublic(BaseModel):
    id: int
    conversation_id: int
    supporter_id: int
    direction: str
    channel: str | None
    body: str
    subject: str | None
    status: str
    provider_message_id: str | None
    error: str | None
    error_code: str | None
    segments: int | None
    attachments: list[dict[str, Any]]
    channel_choice: dict[str, Any]
    kind: str
    announcement_id: int | None
    sent_by: str | None
    # Inbound email when the listener checks senders: False for mail whose sender was not
    # verified (no automation ran for it). None for everything else.
    sender_verified: bool | None
    fallback_at: datetime | None = Field(
        None, description="when it is sent again over the next channel unless delivered or read"
    )
    fallback_from: str | None = Field(
        None, description="the channel that stayed silent, once it was sent again on another"
    )
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None


class MessageDetail(MessagePublic):
    attempts: list[AttemptPublic] = Field(default_factory=list)
    history: list[StatusEventPublic] = Field(default_factory=list)


def message_public(m: Message) -> MessagePublic:
    return MessagePublic(**_message_fields(m))


def message_detail(
    m: Message, attempts: list[MessageAttempt], events: list[MessageStatusEvent]
) -> MessageDetail:
    return MessageDetail(
        **_message_fields(m),
        attempts=[
            AttemptPublic(
                channel=a.channel,
                address=a.address,
                provider=a.provider,
                provider_message_id=a.provider_message_id,
                status=a.status,
                error=a.error,
                created_at=a.created_at,
            )
            for a in attempts
        ],
        history=[
            StatusEventPublic(
                status=e.status, channel=e.channel, error=e.error, created_at=e.created_at
            )
            for e in events
        ],
    )


def _message_fields(m: Message) -> dict[str, Any]:
    return {
        "id": m.id,
        "conversation_id": m.conversation_id,
        "supporter_id": m.supporter_id,
        "direction": m.direction,
        "channel": m.channel,
        "body": m.body,
        "subject": m.subject,
        "status": m.status,
        "provider_message_id": m.provider_message_id,
        "error": m.error,
        "error_code": m.error_code,
        "segments": m.segments,
        "attachments": list(m.attachments or []),
        "channel_choice": dict(m.channel_choice or {}),
        "kind": m.kind,
        "announcement_id": m.announcement_id,
        "sent_by": m.sent_by,
        "sender_verified": m.sender_verified,
        "fallback_at": m.fallback_at,
        "fallback_from": m.fallback_from,
        "created_at": m.created_at,
        "updated_at": m.updated_at,
        "sent_at": m.sent_at,
    }
