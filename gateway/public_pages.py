"""The public pages of outbound messages (routing/outbound/links.py): GET /m/{token} shows
the full text and the media with no login; GET /m/{token}/media/{n} serves an uploaded
file, or forwards to a given URL. The token is 192 random bits; an unknown, erased or
expired token (RALLYPOINT_RETENTION_DAYS) is 404. Everything shown is HTML-escaped, and
uploaded files that are not images, audio or video are served as downloads, never inline.
"""

from __future__ import annotations

from datetime import timedelta
from html import escape
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import select

from gateway.context import GatewayContext
from storage.models import Message, OutboundMedia

router = APIRouter(include_in_schema=False)

Token = Annotated[str, Path(min_length=20, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
HEADERS = {
    "Cache-Control": "private, no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Robots-Tag": "noindex, nofollow",
}
PAGE_POLICY = "default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'"
INLINE_KINDS = ("image/", "audio/", "video/")


async def _message(request: Request, token: str) -> Message:
    ctx: GatewayContext = request.app.state.ctx
    async with ctx.sessions() as session:
        found = (await session.exec(select(Message).where(Message.public_token == token))).first()
    days = ctx.settings.retention_days
    expired = (
        found is not None
        and days is not None
        and found.created_at < ctx.clock() - timedelta(days=days)
    )
    if found is None or found.direction != "outbound" or expired:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such message")
    return found


def _media_item(token: str, index: int, attachment: dict[str, Any]) -> str:
    href = escape(f"/m/{token}/media/{index}")
    name = escape(str(attachment.get("filename") or f"file {index + 1}"))
    kind = str(attachment.get("content_type") or "")
    if attachment.get("upload_id") and kind.startswith("image/"):
        return f'<li><a href="{href}"><img src="{href}" alt="{name}"></a></li>'
    if attachment.get("upload_id") and kind.startswith("audio/"):
        return f'<li><audio controls src="{href}"></audio> <a href="{href}">{name}</a></li>'
    return f'<li><a href="{href}" rel="noreferrer">{name}</a></li>'


@router.get("/m/{token}", response_class=HTMLResponse)
async def message_page(request: Request, token: Token) -> HTMLResponse:
    message = await _message(request, token)
    items = "".join(_media_item(token, n, a) for n, a in enumerate(message.attachments or []))
    subject = f"<h1>{escape(message.subject)}</h1>" if message.subject else ""
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>Message</title><style>body{font:1rem/1.5 sans-serif;max-width:40rem;"
        "margin:1rem auto;padding:0 1rem}img{max-width:100%}</style></head><body>"
        f'{subject}<p style="white-space:pre-wrap">{escape(message.body)}</p>'
        f"{'<ul>' + items + '</ul>' if items else ''}</body></html>"
    )
    return HTMLResponse(html, headers={**HEADERS, "Content-Security-Policy": PAGE_POLICY})


@router.get("/m/{token}/media/{index}")
async def message_media(
    request: Request, token: Token, index: Annotated[int, Path(ge=0, le=20)]
) -> Response:
    message = await _message(request, token)
    attachments = message.attachments or []
    if index >= len(attachments):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such file")
    attachment = attachments[index]
    if attachment.get("url"):
        return RedirectResponse(str(attachment["url"]), status.HTTP_302_FOUND, headers=HEADERS)
    ctx: GatewayContext = request.app.state.ctx
    async with ctx.sessions() as session:
        upload = await session.get(OutboundMedia, int(attachment.get("upload_id") or 0))
    if upload is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such file")
    inline = upload.content_type.lower().startswith(INLINE_KINDS)
    name = "".join(
        c for c in (upload.filename or f"file-{index + 1}") if c.isprintable() and c not in '"\\'
    )
    ascii_name = name.encode("ascii", "replace").decode()
    headers = {
        **HEADERS,
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Content-Disposition": f'{"inline" if inline else "attachment"}; filename="{ascii_name}"',
    }
    media_type = upload.content_type if inline else "application/octet-stream"
    return Response(upload.content, media_type=media_type, headers=headers)
