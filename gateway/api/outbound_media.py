"""Outbound media: POST /api/v1/media uploads a file to send, and the `media_url` /
`media_id` of one-on-ones and announcements are checked here before anything is queued.

A `media_url` must be http(s) on a public host (RALLYPOINT_ALLOW_PRIVATE_WEBHOOKS=true
allows private ones, as for webhooks) and answer a HEAD (or, where HEAD is refused, a GET
read no further than the limit) with a size within RALLYPOINT_MAX_OUTBOUND_MEDIA_BYTES.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, File, HTTPException, Request, Response, UploadFile, status
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.types import Message

from gateway.api.problems import errors
from gateway.api.scope import SessionDep
from gateway.auth import AnyRole, Context
from gateway.context import GatewayContext
from routing.webhooks.targets import BadTarget, check_target
from storage.models import MAX_ID, OutboundMedia

# Room for the multipart framing around the file itself.
FORM_OVERHEAD = 64 * 1024


def too_large(limit: int) -> HTTPException:
    return HTTPException(
        status.HTTP_413_CONTENT_TOO_LARGE, f"the file is over the limit of {limit} bytes"
    )


class UploadSizeLimit(APIRoute):
    """The upload's route: a body past the limit is refused with 413 as it arrives (a
    declared Content-Length over it unread), before the form is parsed or spooled."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def limited(request: Request) -> Response:
            ctx: GatewayContext = request.app.state.ctx
            limit = ctx.settings.max_outbound_media_bytes
            declared = request.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > limit + FORM_OVERHEAD:
                raise too_large(limit)
            received = 0

            async def receive() -> Message:
                nonlocal received
                message = await request.receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > limit + FORM_OVERHEAD:
                        raise too_large(limit)
                return message

            return await handler(Request(request.scope, receive))

        return limited


router = APIRouter(tags=["messages"], route_class=UploadSizeLimit)

PROBE_TIMEOUT = httpx.Timeout(10.0, connect=5.0)


class MediaPublic(BaseModel):
    id: int
    content_type: str
    filename: str | None
    size: int


def _refused(field: str, message: str) -> RequestValidationError:
    return RequestValidationError([{"loc": ("body", field), "msg": message, "type": "value_error"}])


async def _probe(client: httpx.AsyncClient, url: str, limit: int) -> tuple[str | None, int | None]:
    """(content type, size) of the file at `url`; ValueError saying why it will not do."""
    try:
        answer = await client.head(url, follow_redirects=True, timeout=PROBE_TIMEOUT)
        if answer.status_code not in (405, 501) and answer.is_success:
            declared = answer.headers.get("content-length", "")
            if declared.isdigit():
                if int(declared) > limit:
                    raise ValueError(f"the file is {declared} bytes, over the limit of {limit}")
                return answer.headers.get("content-type"), int(declared)
        elif not answer.is_success and answer.status_code not in (405, 501):
            raise ValueError(f"the URL answered HTTP {answer.status_code}")
        # No usable HEAD: read the body, no further than the limit.
        size = 0
        async with client.stream(
            "GET", url, follow_redirects=True, timeout=PROBE_TIMEOUT
        ) as response:
            if not response.is_success:
                raise ValueError(f"the URL answered HTTP {response.status_code}")
            async for chunk in response.aiter_bytes():  # decoded: a gzip bomb counts
                size += len(chunk)
                if size > limit:
                    raise ValueError(f"the file is over the limit of {limit} bytes")
            return response.headers.get("content-type"), size
    except httpx.HTTPError as exc:
        raise ValueError(f"the URL could not be reached ({type(exc).__name__})") from None


async def media_attachments(
    ctx: GatewayContext, session: AsyncSession, media_url: str | None, media_id: int | None
) -> list[dict[str, Any]]:
    """The message's attachments for `media_url` or `media_id` (422 naming the field when
    it will not do); [] with neither."""
    if media_url and media_id:
        raise _refused("media_id", "give media_url or media_id, not both")
    limit = ctx.settings.max_outbound_media_bytes
    if media_url:
        try:
            await check_target(media_url, allow_private=ctx.settings.allow_private_webhooks)
            content_type, size = await _probe(ctx.http_client, media_url, limit)
        except (BadTarget, ValueError) as exc:
            raise _refused("media_url", str(exc).replace("url ", "", 1)) from None
        found: dict[str, Any] = {"url": media_url, "content_type": content_type, "size": size}
        return [{k: v for k, v in found.items() if v is not None}]
    if media_id:
        upload = await session.get(OutboundMedia, media_id) if media_id <= MAX_ID else None
        if upload is None:
            raise _refused("media_id", "no uploaded file has this id")
        attachment = {
            "upload_id": upload.id,
            "content_type": upload.content_type,
            "filename": upload.filename,
            "size": upload.size,
        }
        return [{k: v for k, v in attachment.items() if v is not None}]
    return []


@router.post(
    "/media",
    status_code=status.HTTP_201_CREATED,
    response_model=MediaPublic,
    responses=errors({413: "the file is over RALLYPOINT_MAX_OUTBOUND_MEDIA_BYTES"}),
)
async def upload_media(
    file: Annotated[UploadFile, File(description="the file to send")],
    principal: AnyRole,
    ctx: Context,
    session: SessionDep,
) -> MediaPublic:
    """Keep a file to send: give its `id` as `media_id` of a one-on-one or announcement."""
    limit = ctx.settings.max_outbound_media_bytes
    content = await file.read(limit + 1)
    if len(content) > limit:
        raise too_large(limit)
    if not content:
        raise _refused("file", "the file is empty")
    row = OutboundMedia(
        content_type=(file.content_type or "application/octet-stream")[:200],
        filename=(file.filename or None) and (file.filename or "")[-255:],
        size=len(content),
        content=content,
        created_at=ctx.clock(),
    )
    session.add(row)
    await session.commit()
    assert row.id is not None
    return MediaPublic(
        id=row.id, content_type=row.content_type, filename=row.filename, size=row.size
    )
