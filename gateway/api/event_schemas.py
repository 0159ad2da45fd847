"""The bodies and answers of /api/v1/events."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from gateway.api.announcement_create import AudienceIn
from routing.organizing.event_schedule import InvalidRecurrence, normalized_recurrence
from storage.models import MAX_ID

EventKind = Literal["call", "training", "intake"]
FollowUpTo = Literal["no_show", "attended", "no_reply"]
NO_OFFSET = "give the time with its UTC offset, e.g. 2027-01-05T18:00:00+01:00"


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.utcoffset() is None:
        raise ValueError(NO_OFFSET)
    return value


class EventFields(BaseModel):
    """What POST and PATCH share."""

    title: str | None = Field(None, min_length=1, max_length=200)
    starts_at: datetime | None = Field(None, description="ISO 8601 with a UTC offset")
    duration_minutes: int | None = Field(None, ge=1, le=7 * 24 * 60)
    location_url: str | None = Field(
        None, max_length=2000, description="a link, or a phone bridge / dial-in text"
    )
    description: str | None = Field(None, max_length=10_000)
    capacity: int | None = Field(None, ge=0, description="places; yes beyond it → waitlist")
    kind: EventKind | None = Field(None, description="intake calls are offered in onboarding")

    @field_validator("starts_at")
    @classmethod
    def _offset_given(cls, value: datetime | None) -> datetime | None:
        return _aware(value)


class EventCreate(EventFields):
    title: str = Field(min_length=1, max_length=200)
    starts_at: datetime = Field(description="ISO 8601 with a UTC offset")
    duration_minutes: int = Field(60, ge=1, le=7 * 24 * 60)
    kind: EventKind = "call"
    audience: AudienceIn | None = Field(
        None, description="who is invited; none: nobody is (an intake call onboarding offers)"
    )
    recurrence: str | None = Field(
        None, max_length=500, description="an RFC 5545 RRULE, e.g. FREQ=WEEKLY;COUNT=6"
    )

    @field_validator("recurrence")
    @classmethod
    def _valid_rule(cls, value: str | None, info: ValidationInfo) -> str | None:
        starts_at = info.data.get("starts_at")
        if value is None or starts_at is None:
            return value
        try:
            return normalized_recurrence(value, starts_at)
        except InvalidRecurrence as exc:
            raise ValueError(str(exc)) from None


class EventPatch(EventFields):
    pass


class Occurrence(BaseModel):
    id: int
    starts_at: datetime


class EventPublic(BaseModel):
    id: int
    title: str
    kind: str
    starts_at: datetime
    duration_minutes: int
    location_url: str | None
    description: str | None
    capacity: int | None
    audience: dict[str, Any]
    recurrence: str | None
    cancelled_at: datetime | None
    announcement_id: int | None
    invited: int
    occurrence_id: int | None = Field(description="the occurrence the counts are of")
    counts: dict[str, int] = Field(description="{yes, no, maybe, waitlist, no_reply, attended}")
    created_at: datetime
    updated_at: datetime


class EventDetail(EventPublic):
    occurrences: list[Occurrence]
    by_channel: dict[str, dict[str, int]]
    attendance_rate: float | None = Field(
        description="attended / said yes, over the event's occurrences that have started"
    )
    notified: int | None = Field(None, description="supporters told of this change")


class RsvpPublic(BaseModel):
    supporter_id: int
    occurrence_id: int
    answer: str | None
    answered_at: datetime | None
    attended: bool
    channel: str | None
    invited_at: datetime


class AttendanceIn(BaseModel):
    supporter_ids: list[int] = Field(min_length=1, max_length=5000)
    occurrence_id: int | None = Field(None, ge=1, le=MAX_ID)
    attended: bool = True

    @field_validator("supporter_ids")
    @classmethod
    def _ids(cls, value: list[int]) -> list[int]:
        if any(not 1 <= i <= MAX_ID for i in value):
            raise ValueError("supporter ids are positive row ids")
        return list(dict.fromkeys(value))


class AttendanceOut(BaseModel):
    occurrence_id: int
    marked: int


class FollowUpIn(BaseModel):
    body: str = Field(min_length=1, max_length=10_000)
    to: FollowUpTo
    occurrence_id: int | None = Field(None, ge=1, le=MAX_ID)


class FollowUpOut(BaseModel):
    recipients: int
