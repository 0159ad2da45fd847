"""Request and response bodies for /supporters (Create / Patch / Public split)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, field_validator

from channels.base import Channel
from routing.people.supporters import check_timezone

Name = Field(min_length=1, max_length=200)
DATA_SAVER = (
    "SMS first; media and long texts sent as a short link (the supporter sets it with LITE "
    "and FULL)"
)


class AddressIn(BaseModel):
    channel: Channel
    address: str = Field(min_length=1, max_length=320)


class _SupporterFields(BaseModel):
    @field_validator("timezone", check_fields=False)
    @classmethod
    def _known_timezone(cls, value: str | None) -> str | None:
        return check_timezone(value)


class SupporterCreate(_SupporterFields):
    name: str = Name
    addresses: list[AddressIn] = Field(default_factory=list, max_length=4)
    preferred_channels: list[Channel] = Field(default_factory=list)
    language: str | None = Field(None, max_length=35)
    timezone: str | None = Field(None, max_length=64, description="IANA name, e.g. Africa/Nairobi")
    tags: list[str] = Field(default_factory=list)
    teams: list[int | str] = Field(default_factory=list, description="team ids or names")
    assigned_to: str | None = Field(None, max_length=200)
    data_saver: bool = Field(False, description=DATA_SAVER)
    fields: dict[str, str | int | float | None] = Field(
        default_factory=dict, description="custom fields by name (GET /api/v1/fields)"
    )


class SupporterPatch(_SupporterFields):
    name: str | None = Field(None, min_length=1, max_length=200)
    addresses: list[AddressIn] | None = Field(None, max_length=4)
    preferred_channels: list[Channel] | None = None
    language: str | None = Field(None, max_length=35)
    timezone: str | None = Field(None, max_length=64)
    tags: list[str] | None = None
    teams: list[int | str] | None = None
    assigned_to: str | None = Field(None, max_length=200)
    data_saver: bool | None = Field(None, description=DATA_SAVER)
    fields: dict[str, str | int | float | None] | None = Field(
        None, description="custom fields to set (null clears one); others are kept"
    )


def domain_fields(body: SupporterCreate | SupporterPatch) -> dict[str, Any]:
    """The fields the client gave, shaped for routing.people.supporters."""
    fields = body.model_dump(exclude_unset=True)
    if isinstance(body, SupporterCreate):
        fields["name"] = body.name
    if "name" in fields and fields["name"] is None:
        del fields["name"]  # a name can be changed, never removed
    if body.addresses is not None and "addresses" in fields:
        fields["addresses"] = [(a.channel, a.address) for a in body.addresses]
    if "data_saver" in fields and fields["data_saver"] is None:
        del fields["data_saver"]
    for name in ("preferred_channels", "tags", "teams"):
        if name in fields and fields[name] is None:
            fields[name] = []
    if fields.get("fields") is None:
        fields.pop("fields", None)
    return fields


class AddressPublic(BaseModel):
    channel: str
    address: str
    opted_out: bool
    last_inbound_at: datetime | None


class TeamRef(BaseModel):
    id: int
    name: str


class SupporterStats(BaseModel):
    messages_in: int = 0
    messages_out: int = 0
    one_on_ones: int = 0


class SupporterPublic(BaseModel):
    id: int
    name: str
    addresses: list[AddressPublic]
    preferred_channels: list[str]
    language: str | None
    timezone: str | None
    opted_out: bool
    tags: list[str]
    teams: list[TeamRef]
    assigned_to: str | None
    data_saver: bool = False
    source: str
    last_inbound_at: datetime | None
    last_one_on_one_at: datetime | None
    created_at: datetime
    updated_at: datetime
    stats: SupporterStats
    fields: dict[str, str] = Field(default_factory=dict, description="custom fields by name")


class ImportSummary(BaseModel):
    created: int
    updated: int
    rejected: list[dict[str, Any]] = Field(description="[{row, reason}]")
    opted_out: int = Field(0, description="rows whose opt-out (or an address's) was honoured")
    duplicates: int = Field(0, description="rows repeating an earlier row's address")
    unmatched_columns: list[str] = Field(
        default_factory=list, description="columns naming no custom field: not imported"
    )
    created_fields: list[str] = Field(default_factory=list)
    dry_run: bool = False


class TelegramLink(BaseModel):
    token: str
    start_parameter: str
    url: str | None = None
    # Why `url` is null: Telegram is not configured, or the bot's username is unknown.
    url_error: str | None = None
