"""Announcements in the console: the list, the composer with its preview (the REST API's
dry run: recipients by channel, opted-out and unreachable counts, SMS segments) and then
Send or Schedule (create_announcement with the form's Idempotency-Key: a double submit
sends once), and Cancel (the REST cancel)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from sqlalchemy import func
from sqlmodel import col, select

from channels.sms_segments import sms_segments
from gateway.api.announcement_create import create_announcement, request_hash
from gateway.api.announcements import AnnouncementCreate, cancel, dry_run
from gateway.api.ids import IdPath
from gateway.api.scope import SessionDep, lead_team
from gateway.auth import Context
from gateway.console.audience_form import (
    KEY_PREFIX,
    AudienceChoice,
    FormError,
    local_input,
    new_idempotency_key,
    parse_send_at,
    picker_context,
    team_options,
    text,
)
from gateway.console.security import CurrentUser
from gateway.console.sessions import ConsoleUser
from gateway.console.templating import render
from routing.organizing.checkins import org_timezone
from routing.people.fields import all_fields
from storage.models import MAX_ID, Announcement, Message

router = APIRouter()
PAGE_SIZE = 50
SENT = ("sent", "delivered", "read")
FAILED = ("failed", "undelivered")


@router.get("/announcements", include_in_schema=False)
async def announcement_list(
    request: Request,
    user: CurrentUser,
    ctx: Context,
    session: SessionDep,
    before: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> Response:
    """Newest first, with sent / delivered / failed counts (team leads: their team's)."""
    query = select(Announcement).order_by(col(Announcement.id).desc()).limit(PAGE_SIZE + 1)
    own = lead_team(user.principal)
    if own is not None:
        query = query.where(Announcement.team_scope_id == own)
    if before is not None:
        query = query.where(col(Announcement.id) < before)
    rows = list((await session.exec(query)).all())
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    ids = [a.id for a in rows]
    grouped = await session.execute(
        select(col(Message.announcement_id), col(Message.status), func.count())
        .where(col(Message.announcement_id).in_(ids))
        .group_by(col(Message.announcement_id), col(Message.status))
    )
    counts: dict[int, dict[str, int]] = {}
    for announcement_id, state, n in grouped:
        counts.setdefault(announcement_id, {})[state] = n
    entries = []
    for a in rows:
        c = counts.get(a.id or 0, {})
        entries.append(
            {
                "announcement": a,
                "sent": sum(c.get(s, 0) for s in SENT),
                "delivered": c.get("delivered", 0) + c.get("read", 0),
                "failed": sum(c.get(s, 0) for s in FAILED),
                "state": state_label(a, ctx.clock()),
            }
        )
    older = rows[-1].id if more and rows else None
    return render(request, "announcements.html", {"entries": entries, "older": older})


async def _compose_page(
    request: Request,
    user: ConsoleUser,
    ctx: Context,
    session: SessionDep,
    *,
    body: str = "",
    subject: str = "",
    choice: AudienceChoice | None = None,
    send_at: str = "",
    error: str | None = None,
    preview: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    zone = org_timezone(ctx)
    teams = await team_options(session, user)
    choice = choice or AudienceChoice()
    context = {
        "merge_fields": [f.name for f in await all_fields(session)],
        "body": body,
        "subject": subject,
        "send_at": send_at,
        "error": error,
        "preview": preview,
        **picker_context(teams, choice, user, zone),
    }
    return render(request, "announcement_new.html", context, status_code=status_code)


@router.get("/announcements/new", include_in_schema=False)
async def compose(
    request: Request, user: CurrentUser, ctx: Context, session: SessionDep
) -> Response:
    return await _compose_page(request, user, ctx, session)


def _payload(
    form_body: str, subject: str, choice: AudienceChoice, send_at: Any
) -> AnnouncementCreate:
    if not form_body.strip():
        raise FormError("Write a message.")
    try:
        return AnnouncementCreate(
            body=form_body,
            subject=subject.strip() or None,
            audience=choice.to_api(),
            send_at=send_at,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise FormError(f"{where}: {first['msg']}") from None


@router.post("/announcements/preview", include_in_schema=False)
async def preview(
    request: Request, user: CurrentUser, ctx: Context, session: SessionDep
) -> Response:
    """The dry run of POST /api/v1/announcements: nothing is stored or sent."""
    form = await request.form()
    body, subject = text(form, "body"), text(form, "subject", 998)
    choice = AudienceChoice.from_form(form, user)
    send_at_text = text(form, "send_at", 40)
    keep: dict[str, Any] = {
        "body": body,
        "subject": subject,
        "choice": choice,
        "send_at": send_at_text,
    }
    try:
        when = parse_send_at(send_at_text, org_timezone(ctx), ctx.clock())
        payload = _payload(body, subject, choice, when)
    except FormError as exc:
        return await _compose_page(
            request, user, ctx, session, **keep, error=str(exc), status_code=422
        )
    try:
        result = await dry_run(ctx, session, user.principal, payload.body, payload)
    except RequestValidationError as exc:
        error = "; ".join(str(e.get("msg", "")) for e in exc.errors())
        return await _compose_page(
            request, user, ctx, session, **keep, error=error, status_code=422
        )
    # The longest variant (merge variables rendered for each recipient; email adds the
    # subject) is what a recipient's screen or SMS bill has to hold.
    variants = [result.longest_variant] + (
        [f"{payload.subject}\n\n{result.longest_variant}"] if payload.subject else []
    )
    longest = max(variants, key=len)
    shown = {
        "result": result,
        "longest": longest,
        "longest_chars": len(longest),
        "segments": sms_segments(result.longest_variant),
        "key": new_idempotency_key(),
        "when": when,
        "audience_teams": choice.teams,
    }
    return await _compose_page(request, user, ctx, session, **keep, preview=shown)


@router.post("/announcements", include_in_schema=False)
async def send(request: Request, user: CurrentUser, ctx: Context, session: SessionDep) -> Response:
    """Send (or schedule) what was previewed. The form's key makes a resubmit a replay."""
    form = await request.form()
    body, subject = text(form, "body"), text(form, "subject", 998)
    choice = AudienceChoice.from_form(form, user)
    send_at_text = text(form, "send_at", 40)
    key = text(form, "idempotency_key", 200)
    keep: dict[str, Any] = {
        "body": body,
        "subject": subject,
        "choice": choice,
        "send_at": send_at_text,
    }
    if not key.startswith(KEY_PREFIX):
        return await _compose_page(
            request, user, ctx, session, **keep, error="Preview it first.", status_code=422
        )
    try:
        when = parse_send_at(send_at_text, org_timezone(ctx), ctx.clock())
        payload = _payload(body, subject, choice, when)
    except FormError as exc:
        return await _compose_page(
            request, user, ctx, session, **keep, error=str(exc), status_code=422
        )
    await session.close()  # create_announcement runs its own transactions
    announcement, _ = await create_announcement(
        ctx,
        user.principal,
        kind="announcement",
        body=payload.body,
        subject=payload.subject,
        audience_in=payload.audience,
        send_at=payload.send_at,
        template=None,
        key=key,
        digest=request_hash("announcement", payload),
    )
    return RedirectResponse(
        f"/console/announcements/{announcement.id}", status_code=status.HTTP_303_SEE_OTHER
    )


@router.post("/announcements/{announcement_id:int}/cancel", include_in_schema=False)
async def cancel_page(
    announcement_id: IdPath, user: CurrentUser, ctx: Context, session: SessionDep
) -> Response:
    """The REST cancel; nothing left to cancel is said on the report page, not an error."""
    outcome = "cancelled"
    try:
        await cancel(ctx, session, user.principal, announcement_id)
    except HTTPException as exc:
        if exc.status_code != status.HTTP_409_CONFLICT:
            raise
        outcome = "nothing"
    return RedirectResponse(
        f"/console/announcements/{announcement_id}?cancel={outcome}",
        status_code=status.HTTP_303_SEE_OTHER,
    )


def state_label(announcement: Announcement, now: datetime) -> str:
    """ "scheduled" while its send time is ahead, else its stored state, for people."""
    when = announcement.send_at
    if when is not None and announcement.state != "cancelled":
        if (when if when.tzinfo else when.replace(tzinfo=UTC)) > now:
            return "scheduled"
    return announcement.state.replace("_", " ")


def schedule_text(when: Any, ctx: Context) -> str:
    """`when` in the organization's timezone, for the page."""
    zone = org_timezone(ctx)
    return local_input(when, zone).replace("T", " ") + f" ({zone.key})" if when else ""
