"""/api/v1/messages/{id} and one-on-one sends: POST /api/v1/supporters/{id}/messages."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status
from sqlmodel import col, select

from gateway.api.ids import IdPath
from gateway.api.outbound_media import media_attachments
from gateway.api.problems import errors
from gateway.api.schemas_messages import MessageDetail, OneOnOneCreate, message_detail
from gateway.api.scope import SessionDep, may_see_supporter, not_found, visible_supporter
from gateway.auth import AnyRole, Context
from routing.outbound.one_on_one import CannotSend
from routing.outbound.one_on_one import send_one_on_one as queue_one_on_one
from routing.outbound.spans import parse_span
from storage.models import Message, MessageAttempt, MessageStatusEvent

router = APIRouter(tags=["messages"])


@router.get("/messages/{message_id}", response_model=MessageDetail)
async def read_message(
    message_id: IdPath, principal: AnyRole, session: SessionDep
) -> MessageDetail:
    """A message with every send attempt (one per channel tried) and its status history."""
    message = await session.get(Message, message_id)
    if message is None or not await may_see_supporter(session, principal, message.supporter_id):
        raise not_found("message")
    attempts = await session.exec(
        select(MessageAttempt)
        .where(MessageAttempt.message_id == message_id)
        .order_by(col(MessageAttempt.id))
    )
    events = await session.exec(
        select(MessageStatusEvent)
        .where(MessageStatusEvent.message_id == message_id)
        .order_by(col(MessageStatusEvent.id))
    )
    return message_detail(message, list(attempts.all()), list(events.all()))


@router.post(
    "/supporters/{supporter_id}/messages",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=MessageDetail,
    responses=errors(
        {409: "the supporter opted out, or no channel (or the one asked) can reach them"}
    ),
)
async def send_one_on_one(
    supporter_id: IdPath,
    body: OneOnOneCreate,
    principal: AnyRole,
    ctx: Context,
    session: SessionDep,
) -> MessageDetail:
    """Queue a one-on-one message over the supporter's best channel (or the one asked for).

    Nothing is queued, and the answer is 409 saying why, when the supporter opted out or
    no channel (or not the requested one) can reach them now.
    """
    supporter = await visible_supporter(session, principal, supporter_id)
    attachments = await media_attachments(ctx, session, body.media_url, body.media_id)
    try:
        message = await queue_one_on_one(
            session,
            ctx,
            supporter,
            body.body,
            channel=body.channel,
            subject=body.subject,
            sent_by=principal.label,
            fallback_after=parse_span(body.fallback_after) if body.fallback_after else None,
            attachments=attachments,
        )
    except CannotSend as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    await session.commit()
    return message_detail(message, [], [])
