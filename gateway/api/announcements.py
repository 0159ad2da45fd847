"""Announcements: one body to an audience (teams, tags, language, channels), fanned out in
batches into the outbox; `Idempotency-Key` makes a retried POST answer the original."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Response, status
from pydantic import BaseModel, Field, field_validator
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from channels.sms_segments import sms_segments
from gateway.api.announcement_create import (
    AudienceIn,
    TemplateIn,
    checked_text,
    create_announcement,
    request_hash,
    resolve_audience,
)
from gateway.api.announcement_report import DeliveryReport, delivery_report
from gateway.api.ids import IdempotencyKey, IdPath
from gateway.api.outbound_media import media_attachments
from gateway.api.pagination import (
    DEFAULT_LIMIT,
    Cursor,
    Limit,
    Page,
    decode_cursor,
    encode_cursor,
    split_page,
)
from gateway.api.problems import errors
from gateway.api.schemas_messages import (
    FALLBACK_AFTER,
    MEDIA_ID_HELP,
    MEDIA_URL_HELP,
    check_fallback_after,
    check_media_url,
)
from gateway.api.scope import SessionDep, lead_team, not_found
from gateway.auth import AnyRole, Context, Principal
from gateway.context import GatewayContext
from routing.organizing.checkin_cancel import queued_nudges, skip_run_nudges, skipped_nudges
from routing.organizing.polls import close_polls_of, open_poll_of
from routing.outbound.audience import preview_audience
from routing.outbound.cancel import NothingToCancel, cancel_announcement, stopped_count
from routing.outbound.preview_text import longest_variant
from routing.outbound.spans import parse_span
from storage.models import MAX_ID, Announcement

router = APIRouter(tags=["announcements"])


class AnnouncementCreate(BaseModel):
    body: str = Field(min_length=1, max_length=10_000)
    subject: str | None = Field(None, max_length=998)
    audience: AudienceIn
    send_at: datetime | None = None
    template: TemplateIn | None = None
    fallback_after: str | None = Field(None, max_length=16, description=FALLBACK_AFTER)
    media_url: str | None = Field(None, max_length=2000, description=MEDIA_URL_HELP)
    media_id: int | None = Field(None, ge=1, le=MAX_ID, description=MEDIA_ID_HELP)

    _fallback_after = field_validator("fallback_after")(check_fallback_after)
    _media_url = field_validator("media_url")(check_media_url)


class AnnouncementPublic(BaseModel):
    id: int
    kind: str
    body: str
    subject: str | None
    audience: dict[str, Any]
    recipients: int
    state: str
    send_at: datetime | None
    template: dict[str, Any] | None
    fallback_after: int | None = Field(None, description="seconds; see the request's field")
    attachments: list[dict[str, Any]] = Field(
        default_factory=list, description="the media every message carries"
    )
    created_at: datetime


class AnnouncementDetail(AnnouncementPublic, DeliveryReport):
    pass


class AnnouncementCancelled(AnnouncementDetail):
    cancelled: int = Field(description="messages the cancel stopped (skipped, error cancelled)")
    cancelled_nudges: int = Field(0, description="a check-in run's nudges the cancel stopped")


class DryRun(BaseModel):
    dry_run: bool = True
    recipients: int
    by_channel: dict[str, int]
    skipped: int
    unreachable: int
    sms_segments: dict[str, int] = Field(
        description="{per_message, total}: of the longest variant (an upper bound for total)"
    )
    longest_variant: str = Field(
        "", description="the body as the member it renders longest for gets it (merge variables)"
    )


def public(announcement: Announcement) -> AnnouncementPublic:
    assert announcement.id is not None
    return AnnouncementPublic(
        id=announcement.id,
        kind=announcement.kind,
        body=announcement.body,
        subject=announcement.subject,
        audience=announcement.audience or {},
        recipients=announcement.recipients,
        state=announcement.state,
        send_at=announcement.send_at,
        template=announcement.template,
        fallback_after=announcement.fallback_after,
        attachments=list(announcement.attachments or []),
        created_at=announcement.created_at,
    )


async def dry_run(
    ctx: GatewayContext,
    session: AsyncSession,
    principal: Principal,
    body: str,
    given: AnnouncementCreate,
) -> DryRun:
    template = await checked_text(session, body, "body")
    audience, _ = await resolve_audience(session, principal, given.audience)
    await session.commit()  # release the (SQLite) write lock while the preview reads
    preview = await preview_audience(ctx, audience, has_template=given.template is not None)
    longest = await longest_variant(ctx, audience, template)
    per_message = sms_segments(longest)
    return DryRun(
        recipients=preview.recipients,
        by_channel=preview.by_channel,
        skipped=preview.skipped,
        unreachable=preview.unreachable,
        sms_segments={
            "per_message": per_message,
            "total": per_message * preview.by_channel.get("sms", 0),
        },
        longest_variant=longest,
    )


@router.post(
    "/announcements",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=AnnouncementPublic | DryRun,
    responses={
        200: {
            "model": AnnouncementPublic | DryRun,
            "description": "the preview (?dry_run=true), or a replay of this Idempotency-Key",
        },
        **errors({409: "this Idempotency-Key was used with another request"}),
    },
    summary="Announce to an audience (202), replay (200), or preview with ?dry_run=true",
)
async def post_announcement(
    payload: AnnouncementCreate,
    ctx: Context,
    session: SessionDep,
    principal: AnyRole,
    response: Response,
    key: IdempotencyKey = None,
    dry: Annotated[bool, Query(alias="dry_run")] = False,
) -> AnnouncementPublic | DryRun:
    if dry:
        response.status_code = status.HTTP_200_OK
        return await dry_run(ctx, session, principal, payload.body, payload)
    attachments = await media_attachments(ctx, session, payload.media_url, payload.media_id)
    await session.close()  # create_announcement runs its own transactions
    announcement, created = await create_announcement(
        ctx,
        principal,
        kind="announcement",
        body=payload.body,
        subject=payload.subject,
        audience_in=payload.audience,
        send_at=payload.send_at,
        template=payload.template.model_dump(exclude_none=True) if payload.template else None,
        key=key,
        digest=request_hash("announcement", payload),
        fallback_after=parse_span(payload.fallback_after) if payload.fallback_after else None,
        attachments=attachments,
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return public(announcement)


async def visible_announcement(
    session: AsyncSession, principal: Principal, announcement_id: int
) -> Announcement:
    """The announcement, if `principal` may see it (team leads: their team's only)."""
    announcement = await session.get(Announcement, announcement_id)
    own = lead_team(principal)
    if announcement is None or (own is not None and announcement.team_scope_id != own):
        raise not_found("announcement")
    return announcement


@router.get("/announcements", response_model=Page[AnnouncementPublic])
async def list_announcements(
    session: SessionDep,
    principal: AnyRole,
    kind: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[AnnouncementPublic]:
    """Newest first."""
    query = select(Announcement).order_by(col(Announcement.id).desc()).limit(limit + 1)
    key = decode_cursor(cursor, (int,))
    if key is not None:
        query = query.where(col(Announcement.id) < key[0])
    own = lead_team(principal)
    if own is not None:
        query = query.where(Announcement.team_scope_id == own)
    if kind:
        query = query.where(Announcement.kind == kind)
    rows, more = split_page(list((await session.exec(query)).all()), limit)
    last = rows[-1].id if rows and more else None
    return Page(items=[public(a) for a in rows], next_cursor=encode_cursor(last) if last else None)


@router.get("/announcements/{announcement_id}", response_model=AnnouncementDetail)
async def get_announcement(
    announcement_id: IdPath, session: SessionDep, principal: AnyRole
) -> AnnouncementDetail:
    announcement = await visible_announcement(session, principal, announcement_id)
    report = await delivery_report(session, announcement_id)
    return AnnouncementDetail(**public(announcement).model_dump(), **report.model_dump())


@router.post(
    "/announcements/{announcement_id}/cancel",
    response_model=AnnouncementCancelled,
    responses={
        409: {
            "description": "nothing left to cancel: every message was sent or ended (and the "
            "poll is closed, the check-in run's nudges have gone out)"
        }
    },
)
async def post_cancel(
    announcement_id: IdPath, ctx: Context, session: SessionDep, principal: AnyRole
) -> AnnouncementCancelled:
    """Stop the fan-out and skip every message not yet handed to a provider; sends in
    flight and sent messages stay. A poll is closed too, and a check-in run's nudges are
    stopped like its prompt, even once all its own messages have gone out (then it is
    cancelled while the poll is open or a nudge is queued). Again on a cancelled one: 200,
    the current report."""
    return await cancel(ctx, session, principal, announcement_id)


async def cancel(
    ctx: GatewayContext, session: AsyncSession, principal: Principal, announcement_id: int
) -> AnnouncementCancelled:
    """What POST /announcements/{id}/cancel does (the console's "Cancel" too); nothing
    left to cancel → 409."""
    announcement = await visible_announcement(session, principal, announcement_id)
    now = ctx.clock()
    # What else the cancel stops, left when its own messages have all gone out.
    left = {"poll": open_poll_of, "checkin": queued_nudges}.get(announcement.kind)
    also_left = [left(announcement_id)] if left else []
    try:
        await cancel_announcement(session, announcement_id, now, also_left)
    except NothingToCancel as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    if announcement.kind == "poll":
        await close_polls_of(session, announcement_id)
    elif announcement.kind == "checkin":
        await skip_run_nudges(session, announcement_id, now)
    await session.commit()
    # Rows this process's dispatcher already claimed are not sent after all (dispatch.py).
    ctx.cancelled_announcements.add(announcement_id)
    await session.refresh(announcement)
    report = await delivery_report(session, announcement_id)
    return AnnouncementCancelled(
        **public(announcement).model_dump(),
        **report.model_dump(),
        cancelled=await stopped_count(session, announcement_id),
        cancelled_nudges=await skipped_nudges(session, announcement_id)
        if announcement.kind == "checkin"
        else 0,
    )
