"""GET /api/v1/messages/{id}/attachments/{n}: the bytes of what a supporter sent.

Only an attachment's metadata is stored; its bytes are fetched from the provider that
received it, on each request, through that adapter's `fetch_media`.
"""

from __future__ import annotations

import logging
from typing import cast
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Response, status

from channels.base import (
    Attachment,
    Channel,
    MediaError,
    MediaGone,
    MediaSource,
    MediaTooLarge,
)
from channels.registry import Registry
from gateway.api.ids import IdPath
from gateway.api.scope import SessionDep, may_see_supporter, not_found
from gateway.auth import AnyRole, Context
from storage.models import Message

log = logging.getLogger(__name__)

router = APIRouter(tags=["messages"])

ERRORS = {
    404: "unknown message or index, an outbound message, or bytes not kept (email)",
    409: "no configured provider can fetch this attachment",
    410: "the provider no longer has the media",
    413: "the media is larger than RALLYPOINT_MAX_MEDIA_BYTES",
    502: "the provider was unreachable, failed or refused our credentials",
}


def media_source(registry: Registry, channel: str, attachment: Attachment) -> MediaSource | None:
    """The enabled adapter that received `attachment` (providers can share a channel)."""
    sources = [a for a in registry.by_provider.values() if isinstance(a, MediaSource)]
    return next((s for s in sources if s.can_fetch(cast(Channel, channel), attachment)), None)


def error_status(exc: MediaError) -> int:
    if isinstance(exc, MediaGone):
        return status.HTTP_410_GONE
    if isinstance(exc, MediaTooLarge):
        return status.HTTP_413_CONTENT_TOO_LARGE
    return status.HTTP_502_BAD_GATEWAY


def content_disposition(filename: str | None) -> str:
    if not filename:
        return "attachment"
    quoted = quote(filename)
    if quoted != filename:  # non-ASCII, quotes, spaces or line breaks: RFC 6266 filename*
        return f"attachment; filename*=utf-8''{quoted}"
    return f'attachment; filename="{filename}"'


@router.get(
    "/messages/{message_id}/attachments/{index}",
    response_class=Response,
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "the bytes"},
        **{code: {"description": why} for code, why in ERRORS.items()},
    },
)
async def read_attachment(
    message_id: IdPath, index: int, principal: AnyRole, ctx: Context, session: SessionDep
) -> Response:
    """The bytes of attachment `index` (0-based) of an inbound message, with its content
    type and, when known, its file name."""
    message = await session.get(Message, message_id)
    if message is None or not await may_see_supporter(session, principal, message.supporter_id):
        raise not_found("message")
    stored = message.attachments or []
    if not 0 <= index < len(stored):
        raise not_found("attachment")
    if message.direction != "inbound":
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            "only attachments supporters sent are served; an outbound one is its url",
        )
    channel = message.channel or ""
    await session.close()  # no database connection held while the provider answers
    attachment = Attachment.from_dict(stored[index])
    if attachment.url is None and attachment.media_id is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"the bytes of {channel} attachments are not kept, only their name, type and size",
        )
    source = media_source(ctx.registry, channel, attachment)
    if source is None:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"no configured {channel} provider can fetch this attachment; "
            "configure the provider that received it",
        )
    try:
        media = await source.fetch_media(attachment, max_bytes=ctx.settings.max_media_bytes)
    except MediaError as exc:
        # The message names the provider and the status, never a URL or a token.
        log.warning("attachment %d of message %s not served: %s", index, message_id, exc)
        raise HTTPException(error_status(exc), str(exc)) from exc
    return Response(
        media.content,
        media_type=media.content_type or "application/octet-stream",
        headers={
            "Content-Disposition": content_disposition(media.filename),
            "X-Content-Type-Options": "nosniff",
        },
    )
