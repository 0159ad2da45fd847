"""RALLYPOINT_MAX_JSON_BYTES: a JSON body on /api/v1 over the limit is refused with 413,
reading no more than the limit (a declared Content-Length over it unread, a streamed body as
soon as it passes it). CSV imports (multipart) have their own limit (supporters_csv.py)."""

from __future__ import annotations

from fastapi import HTTPException, status
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PREFIX = "/api/v1/"


def too_large(limit: int) -> HTTPException:
    return HTTPException(
        status.HTTP_413_CONTENT_TOO_LARGE,
        f"the request body is larger than {limit} bytes (RALLYPOINT_MAX_JSON_BYTES)",
    )


class JsonBodyLimit:
    """ASGI middleware: the body's reader raises 413 (an HTTPException, so the API's
    handlers answer it as every other error) once it passes `limit` bytes."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PREFIX) or _multipart(scope):
            await self.app(scope, receive, send)
            return
        limit = self.limit
        declared = dict(scope["headers"]).get(b"content-length", b"")
        over = declared.isdigit() and int(declared) > limit
        received = 0

        async def limited() -> Message:
            nonlocal received
            if over:
                raise too_large(limit)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise too_large(limit)
            return message

        await self.app(scope, limited, send)


def _multipart(scope: Scope) -> bool:
    content_type: bytes = dict(scope["headers"]).get(b"content-type", b"")
    return content_type.lower().startswith(b"multipart/")
