"""Creating an announcement (or a poll's question): resolving and checking the audience,
Idempotency-Key replays, and starting the fan-out."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import HTTPException, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, field_validator
from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from channels.base import Channel
from gateway.api.scope import lead_team
from gateway.auth import Principal
from gateway.context import GatewayContext
from routing.outbound.audience import Audience, count_audience
from routing.outbound.fanout import fan_out, start_fanout
from routing.people.fields import FieldValueError, check_filter
from routing.people.team_delete import keep_teams
from routing.texts.variables import Template, TemplateError, check_text
from storage.models import Announcement
from storage.queries import find_team

# Audiences up to this size fan out inside the request; larger ones in a background task.
INLINE_LIMIT = 2000


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str | int) else value


class AudienceIn(BaseModel):
    teams: list[int | str] | None = Field(None, description="team ids or names")
    tags: list[str] | None = None
    language: list[str] | None = Field(None, description='e.g. ["es"] (also matches es-MX)')
    channels: list[Channel] | None = Field(None, description="send over these only")
    fields: dict[str, str | int | float | list[str | int | float]] | None = Field(
        None, description='custom fields, e.g. {"county": "Kisumu"} (a list: any of them)'
    )
    all: bool = False

    @field_validator("teams", "tags", "language", "channels", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return _as_list(value)


class TemplateIn(BaseModel):
    name: str = Field(min_length=1, max_length=512)
    language: str = "en"
    variables: dict[str, str] | None = None
    content_sid: str | None = None


async def checked_text(session: AsyncSession, text: str, field: str) -> Template:
    """`text` parsed, its merge variables checked: an unknown one → 422 naming it."""
    try:
        return await check_text(session, text)
    except TemplateError as exc:
        raise RequestValidationError(
            [{"loc": ("body", field), "msg": str(exc), "type": "value_error"}]
        ) from exc


def _invalid(field: str, message: str) -> RequestValidationError:
    return RequestValidationError(
        [{"loc": ("body", "audience", field), "msg": message, "type": "value_error"}]
    )


async def resolve_audience(
    session: AsyncSession, principal: Principal, given: AudienceIn
) -> tuple[Audience, int | None]:
    """The audience with team ids, and the one team it is scoped to (what team leads see).

    Empty selector or unknown team → 422; a team lead outside exactly their team → 403.
    The teams stay locked against deletion until the caller's transaction ends.
    """
    team_ids: list[int] = []
    refs: dict[int, int | str] = {}
    for ref in given.teams or []:
        team = await find_team(session, ref)
        if team is None or team.id is None:
            raise _invalid("teams", f"no team {ref!r}")
        team_ids.append(team.id)
        refs.setdefault(team.id, ref)
    # A team deleted while this waited for its lock is as unknown as one never made.
    kept = await keep_teams(session, team_ids)
    for team_id, ref in refs.items():
        if team_id not in kept:
            raise _invalid("teams", f"no team {ref!r}")
    try:
        wanted = await check_filter(session, given.fields or {})
    except FieldValueError as exc:
        raise RequestValidationError(
            [
                {
                    "loc": ("body", "audience", "fields", exc.field),
                    "msg": exc.message,
                    "type": "value_error",
                }
            ]
        ) from exc
    audience = Audience.from_dict(
        {**given.model_dump(), "teams": team_ids, "fields": {k: list(v) for k, v in wanted.items()}}
    )
    if audience.is_empty:
        raise _invalid("all", "give teams, tags, language, channels or fields, or all: true")
    scope = audience.teams[0] if len(audience.teams) == 1 else None
    own = lead_team(principal)
    if own is not None and audience.teams != (own,):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "a team lead may announce to their team only"
        )
    return audience, scope


def request_hash(kind: str, payload: BaseModel) -> str:
    """SHA-256 of the canonical JSON of the request: replays compare this."""
    canonical = json.dumps(
        {"kind": kind, "body": payload.model_dump(mode="json")},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


async def _by_key(session: AsyncSession, key: str) -> Announcement | None:
    query = select(Announcement).where(Announcement.idempotency_key == key)
    return (await session.exec(query)).first()


def _replay(principal: Principal, existing: Announcement, digest: str) -> Announcement:
    own = lead_team(principal)
    if existing.request_hash != digest or (own is not None and existing.team_scope_id != own):
        raise HTTPException(
            status.HTTP_409_CONFLICT, "this Idempotency-Key was used with another request"
        )
    return existing


OnCreate = Callable[[AsyncSession, Announcement], Awaitable[None]]


async def create_announcement(
    ctx: GatewayContext,
    principal: Principal,
    *,
    kind: str,
    body: str,
    subject: str | None,
    audience_in: AudienceIn,
    send_at: datetime | None,
    template: dict[str, Any] | None,
    key: str | None,
    digest: str,
    on_create: OnCreate | None = None,
    fallback_after: int | None = None,
    attachments: list[dict[str, Any]] | None = None,
    text_field: str = "body",
) -> tuple[Announcement, bool]:
    """Create and fan out (or replay) an announcement; True when it was created now."""
    if send_at is not None and send_at.tzinfo is None:
        send_at = send_at.replace(tzinfo=UTC)
    async with ctx.sessions() as session:
        existing = await _by_key(session, key) if key else None
        if existing is None:
            await checked_text(session, body, text_field)
            audience, scope = await resolve_audience(session, principal, audience_in)
            announcement = Announcement(
                body=body,
                subject=subject,
                audience=audience.as_dict(),
                send_at=send_at,
                template=template,
                idempotency_key=key,
                request_hash=digest if key else None,
                created_by_key_id=principal.key_id,
                team_scope_id=scope,
                recipients=await count_audience(session, audience),
                kind=kind,
                fallback_after=fallback_after,
                attachments=list(attachments or []),
                created_at=ctx.clock(),
            )
            session.add(announcement)
            try:
                await session.flush()
                if on_create is not None:
                    await on_create(session, announcement)
                await session.commit()
            except IntegrityError:
                # The same key won a race in another request: answer as a replay.
                await session.rollback()
                existing = await _by_key(session, key) if key else None
                if existing is None:
                    raise
    if existing is not None:
        existing = _replay(principal, existing, digest)
        if existing.state == "pending" and existing.id is not None:
            start_fanout(ctx, existing.id)  # finish what a crash interrupted
        return existing, False
    assert announcement.id is not None
    if announcement.recipients <= INLINE_LIMIT:
        await fan_out(ctx, announcement.id)
        async with ctx.sessions() as session:
            fresh = await session.get(Announcement, announcement.id)
            assert fresh is not None
            return fresh, True
    start_fanout(ctx, announcement.id)
    return announcement, True
