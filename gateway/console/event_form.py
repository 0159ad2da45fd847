"""The event form's fields as typed, turned into the REST API's bodies (gateway/api/
event_schemas.py) so the console and the API check input the same way."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from starlette.datastructures import FormData

from gateway.api.event_schemas import EventCreate, EventPatch
from gateway.console.audience_form import AudienceChoice, FormError, local_input, text
from storage.models import Event

LABELS = {
    "title": "Title",
    "starts_at": "Starts",
    "duration_minutes": "Duration",
    "location_url": "Link or dial-in",
    "description": "Description",
    "capacity": "Capacity",
    "recurrence": "Repeats",
    "kind": "Kind",
}


@dataclass
class EventInput:
    title: str = ""
    kind: str = "call"
    starts_at: str = ""  # datetime-local, in the organization's timezone
    duration_minutes: str = "60"
    location_url: str = ""
    description: str = ""
    capacity: str = ""
    recurrence: str = ""

    @classmethod
    def from_form(cls, form: FormData) -> EventInput:
        return cls(
            title=text(form, "title", 200),
            kind=text(form, "kind", 16) or "call",
            starts_at=text(form, "starts_at", 40),
            duration_minutes=text(form, "duration_minutes", 10),
            location_url=text(form, "location_url", 2000),
            description=text(form, "description", 10_000),
            capacity=text(form, "capacity", 10),
            recurrence=text(form, "recurrence", 500),
        )

    @classmethod
    def of(cls, event: Event, zone: ZoneInfo) -> EventInput:
        return cls(
            title=event.title,
            kind=event.kind,
            starts_at=local_input(event.starts_at, zone),
            duration_minutes=str(event.duration_minutes),
            location_url=event.location_url or "",
            description=event.description or "",
            capacity="" if event.capacity is None else str(event.capacity),
            recurrence=event.recurrence or "",
        )

    def fields(self, zone: ZoneInfo) -> dict[str, Any]:
        """The API body's fields (the start with the zone's offset; empty → left out)."""
        values: dict[str, Any] = {
            "title": self.title.strip(),
            "kind": self.kind,
            "duration_minutes": self.duration_minutes.strip() or "60",
            "location_url": self.location_url.strip() or None,
            "description": self.description.strip() or None,
            "capacity": self.capacity.strip() or None,
        }
        start = self.starts_at.strip()
        if start:
            try:
                local = datetime.fromisoformat(start)
            except ValueError:
                raise FormError("Starts: give a date and time, e.g. 2026-12-08 18:00.") from None
            values["starts_at"] = local if local.tzinfo else local.replace(tzinfo=zone)
        return values


def _first_error(exc: ValidationError) -> FormError:
    first = exc.errors()[0]
    field = str(first["loc"][0]) if first["loc"] else "form"
    message = str(first["msg"]).removeprefix("Value error, ")
    return FormError(f"{LABELS.get(field, field.capitalize())}: {message}")


def create_body(given: EventInput, choice: AudienceChoice, zone: ZoneInfo) -> EventCreate:
    """The POST /events body; nobody picked → no invitations (an intake call onboarding
    offers)."""
    audience = None
    if choice.everyone or choice.teams or choice.tag_list:
        audience = choice.to_api()
    try:
        return EventCreate(
            **given.fields(zone),
            recurrence=given.recurrence.strip() or None,
            audience=audience,
        )
    except ValidationError as exc:
        raise _first_error(exc) from None


def patch_body(given: EventInput, zone: ZoneInfo) -> dict[str, Any]:
    """The PATCH /events/{id} changes (only what the form holds)."""
    try:
        patch = EventPatch(**given.fields(zone))
    except ValidationError as exc:
        raise _first_error(exc) from None
    changes = patch.model_dump(exclude_unset=True)
    if not changes.get("title") or changes.get("starts_at") is None:
        raise FormError("Title and start are needed.")
    return changes
