"""Meta's webhook and Graph API shapes, private to this adapter.

Lenient on purpose: Meta adds fields often, so unknown fields are ignored and almost
everything is optional; a message we cannot read is stored as unsupported, not rejected.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Shape(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class Profile(_Shape):
    name: str | None = None


class Contact(_Shape):
    wa_id: str | None = None
    profile: Profile | None = None


class Text(_Shape):
    body: str = ""


class Media(_Shape):
    """image, audio, video, document and sticker share this shape."""

    id: str | None = None
    mime_type: str | None = None
    caption: str | None = None
    filename: str | None = None


class Location(_Shape):
    latitude: float
    longitude: float
    name: str | None = None
    address: str | None = None


class Button(_Shape):
    text: str = ""
    payload: str | None = None


class Reply(_Shape):
    id: str | None = None
    title: str = ""


class Interactive(_Shape):
    type: str = ""
    button_reply: Reply | None = None
    list_reply: Reply | None = None


class Reaction(_Shape):
    message_id: str | None = None
    emoji: str | None = None


class WaMessage(_Shape):
    """One entry of `value.messages`."""

    sender: str | None = Field(default=None, alias="from")
    id: str
    timestamp: str | None = None
    type: str = "unknown"
    text: Text | None = None
    image: Media | None = None
    audio: Media | None = None
    video: Media | None = None
    document: Media | None = None
    sticker: Media | None = None
    location: Location | None = None
    button: Button | None = None
    interactive: Interactive | None = None
    reaction: Reaction | None = None


class ErrorData(_Shape):
    details: str | None = None


class StatusError(_Shape):
    code: int | None = None
    title: str | None = None
    message: str | None = None
    error_data: ErrorData | None = None


class WaStatus(_Shape):
    """One entry of `value.statuses`."""

    id: str
    status: str
    timestamp: str | None = None
    recipient_id: str | None = None
    errors: list[StatusError] = Field(default_factory=list)


class Metadata(_Shape):
    display_phone_number: str | None = None
    phone_number_id: str | None = None


class ChangeValue(_Shape):
    """Messages and statuses stay raw dicts here: each is validated on its own so one odd
    message cannot reject its neighbours, and its exact JSON is kept for audit."""

    metadata: Metadata = Field(default_factory=Metadata)
    contacts: list[Contact] = Field(default_factory=list)
    messages: list[dict[str, Any]] = Field(default_factory=list)
    statuses: list[dict[str, Any]] = Field(default_factory=list)


class Change(_Shape):
    field: str
    value: dict[str, Any] = Field(default_factory=dict)


class Entry(_Shape):
    id: str | None = None
    changes: list[Change] = Field(default_factory=list)


class Notification(_Shape):
    """The whole webhook body."""

    object: str
    entry: list[Entry] = Field(default_factory=list)


class GraphError(_Shape):
    """`{"error": {...}}` in a Graph API error answer."""

    code: int | None = None
    error_subcode: int | None = None
    message: str | None = None
    type: str | None = None
    error_data: ErrorData | None = None


class SentMessage(_Shape):
    id: str


class SendAnswer(_Shape):
    """A successful answer of POST /{phone-number-id}/messages."""

    messages: list[SentMessage] = Field(default_factory=list)


class MediaInfo(_Shape):
    """The answer of GET /{media-id}: a download URL valid for about five minutes."""

    url: str
    mime_type: str | None = None
    file_size: int | None = None  # sent as a string; pydantic reads it as a number
    id: str | None = None
