"""Request and response bodies for /teams."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field, field_validator


class _TeamName(BaseModel):
    @field_validator("name", check_fields=False)
    @classmethod
    def _not_an_id(cls, value: str | None) -> str | None:
        # Teams are referenced by id or name, so a name must not look like an id.
        if value is not None and value.strip().isdigit():
            raise ValueError("a team name cannot be only digits")
        return value.strip() if value is not None else None


class TeamCreate(_TeamName):
    name: str = Field(min_length=1, max_length=200, pattern=r"\S")
    description: str | None = Field(None, max_length=2000)
    welcome_text: str | None = Field(None, max_length=4000)
    orientation_call: str | None = Field(None, max_length=500)


class TeamPatch(_TeamName):
    name: str | None = Field(None, min_length=1, max_length=200, pattern=r"\S")
    description: str | None = Field(None, max_length=2000)
    welcome_text: str | None = Field(None, max_length=4000)
    orientation_call: str | None = Field(None, max_length=500)


class TeamPublic(BaseModel):
    id: int
    name: str
    description: str | None
    welcome_text: str | None
    orientation_call: str | None
    created_at: datetime
    members: int = 0


class TeamList(BaseModel):
    items: list[TeamPublic]
    next_cursor: str | None = None
