"""What the announcement and poll forms share: the audience picker (teams, tags, everyone;
a team lead's own team, fixed), the optional schedule in the organization's timezone, and
the Idempotency-Key each form carries so a double submit sends once."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.datastructures import FormData

from gateway.api.announcement_create import AudienceIn
from gateway.console.sessions import ConsoleUser
from storage.models import Team

# Keys from the console are random; the prefix tells them apart from scripts' keys.
KEY_PREFIX = "console-"
MAX_TAGS = 50


class FormError(ValueError):
    """Bad input in a form: the page is shown again with this message and what was typed."""


def new_idempotency_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(24)


def text(form: FormData, name: str, limit: int = 10_000) -> str:
    value = form.get(name)
    return value[:limit] if isinstance(value, str) else ""


@dataclass
class AudienceChoice:
    """The picker's values as typed (kept when the form is shown again)."""

    everyone: bool = False
    teams: list[int] = field(default_factory=list)
    tags: str = ""

    @classmethod
    def from_form(cls, form: FormData, user: ConsoleUser) -> AudienceChoice:
        teams: list[int] = []
        for value in form.getlist("teams"):
            if isinstance(value, str) and value.strip().isdigit():
                teams.append(int(value))
        if user.user.role == "team_lead" and not teams:
            teams = [user.user.team_id or -1]
        return cls(
            everyone=form.get("everyone") == "on" and user.user.role != "team_lead",
            teams=teams,
            tags=text(form, "tags", 2000),
        )

    @property
    def tag_list(self) -> list[str]:
        return [t.strip() for t in self.tags.split(",") if t.strip()][:MAX_TAGS]

    def to_api(self) -> AudienceIn:
        """The REST API's audience (gateway/api/announcement_create.resolve_audience then
        checks it: unknown team → 422, a team lead outside their team → 403)."""
        if not (self.everyone or self.teams or self.tag_list):
            raise FormError("Choose who gets it: everyone, one or more teams, or tags.")
        return AudienceIn(
            teams=list(self.teams) or None,
            tags=self.tag_list or None,
            all=self.everyone,
        )


async def team_options(session: AsyncSession, user: ConsoleUser) -> list[Team]:
    """The teams the picker offers: all of them, or a team lead's own only."""
    query = select(Team).order_by(col(Team.name))
    if user.user.role == "team_lead":
        query = query.where(Team.id == (user.user.team_id or -1))
    return list((await session.exec(query)).all())


def parse_send_at(value: str, zone: ZoneInfo, now: datetime) -> datetime | None:
    """A datetime-local value ("2026-12-08T09:30") in `zone`, as UTC; empty → None."""
    value = value.strip()
    if not value:
        return None
    try:
        local = datetime.fromisoformat(value)
    except ValueError:
        raise FormError("Send at: give a date and time, e.g. 2026-12-08 09:30.") from None
    if local.tzinfo is None:
        local = local.replace(tzinfo=zone)
    when = local.astimezone(UTC)
    if when <= now:
        raise FormError("Send at must be in the future (leave it empty to send now).")
    return when


def local_input(when: datetime | None, zone: ZoneInfo) -> str:
    """The datetime-local value showing `when` in `zone`."""
    if when is None:
        return ""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(zone).strftime("%Y-%m-%dT%H:%M")


def picker_context(
    teams: list[Team], choice: AudienceChoice, user: ConsoleUser, zone: ZoneInfo
) -> dict[str, Any]:
    """What templates/_audience.html reads."""
    return {
        "teams": teams,
        "choice": choice,
        "team_fixed": user.user.role == "team_lead",
        "zone": zone.key,
    }
