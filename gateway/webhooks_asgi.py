"""The webhook POST path as a thin ASGI handler in front of FastAPI.

A signed webhook costs little to verify, parse and store (group commit), so the HTTP
framework around it was most of its CPU: FastAPI's and Starlette's middleware, routing
and Request/Response objects. `RallypointApp` answers POST /webhooks/<provider>[/<kind>]
itself (and /webhooks/<provider>/<secret>[/<kind>] for a provider with the secret in
the path), with the same steps and answers as the routes in `gateway.webhooks` (404 for an
unknown provider, 413 over the body limit, 400 for an unreadable form or a malformed
payload, 403 for a bad signature, the adapter's answer after the commit or the spool),
and hands everything else, including any webhook URL it is not sure about, to FastAPI.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, HTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import Message, Receive, Scope, Send

from channels.base import WebhookRequest, WebhookResponse
from gateway.api.problems import document_errors
from gateway.context import GatewayContext
from gateway.request_ids import HEADER, request_id_from, set_request_id
from gateway.webhooks import (
    FORM_TYPE,
    adapter_for,
    parse_form,
    process,
    shown_path,
    too_large,
    webhook_target,
)

# Path segments that Starlette's URL leaves as they are (anything else goes the long way).
# /webhooks/<provider>[/<kind>], or /webhooks/<provider>/<secret>[/<kind>] for a provider
# with the secret in the path (gateway.webhooks.webhook_target tells them apart).
WEBHOOK_PATH = re.compile(
    r"/webhooks/([A-Za-z0-9_.~-]+)(?:/([A-Za-z0-9_.~-]+)(?:/([A-Za-z0-9_.~-]+))?)?"
)


class RallypointApp(FastAPI):
    """FastAPI, with webhook POSTs served by `serve_webhook` before its middleware."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request_id = request_id_from(scope["headers"])
        set_request_id(request_id)
        echoed = (HEADER, request_id.encode("ascii"))
        if scope["method"] == "POST" and not self.root_path:
            match = WEBHOOK_PATH.fullmatch(scope["path"])
            if match is not None and not scope.get("root_path"):
                query = _query(scope)
                if query is not None:
                    ctx: GatewayContext = self.state.ctx
                    segments = (match.group(2), match.group(3))
                    webhook = Webhook(ctx, match.group(1), segments, query, echoed)
                    await serve_webhook(webhook, scope, receive, send)
                    return
        await super().__call__(scope, receive, _echo_request_id(send, echoed))

    def openapi(self) -> dict[str, Any]:
        """FastAPI's document, with the error answers every API route can give."""
        if self.openapi_schema is None:
            self.openapi_schema = document_errors(super().openapi())
        return self.openapi_schema


def _echo_request_id(send: Send, echoed: tuple[bytes, bytes]) -> Send:
    async def send_with_id(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [*message.get("headers", ()), echoed]
            message = {**message, "headers": headers}
        await send(message)

    return send_with_id


@dataclass(frozen=True, slots=True)
class Webhook:
    """What the path of a webhook POST says, and the request id header to answer with."""

    ctx: GatewayContext
    provider: str
    segments: tuple[str | None, str | None]
    query: str
    echoed: tuple[bytes, bytes]


def _query(scope: Scope) -> str | None:
    """The query string as Starlette's URL reads it; None if it might read it otherwise."""
    raw: bytes = scope.get("query_string", b"")
    if b"#" in raw:
        return None
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return None


@lru_cache(maxsize=64)
def _rendered(answer: WebhookResponse) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    response = Response(answer.body, status_code=answer.status_code, media_type=answer.media_type)
    return response.status_code, response.raw_headers, bytes(response.body)


async def serve_webhook(webhook: Webhook, scope: Scope, receive: Receive, send: Send) -> None:
    ctx, provider, query = webhook.ctx, webhook.provider, webhook.query
    started = False

    async def respond(status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        nonlocal started
        started = True
        headers = [*headers, webhook.echoed]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    try:
        try:
            adapter = adapter_for(ctx, provider)
            secret, kind = webhook_target(adapter, *webhook.segments)
            path = shown_path(provider, kind) if secret else scope["path"]
            frozen = await _freeze(ctx, path, kind, secret, query, scope, receive)
            answer = await process(adapter, frozen, ctx)
        except HTTPException as exc:  # as FastAPI's handler renders it
            error = JSONResponse({"detail": exc.detail}, exc.status_code, headers=exc.headers)
            await respond(error.status_code, error.raw_headers, bytes(error.body))
            return
        except ClientDisconnect:
            return  # nobody is left to answer
        await respond(*_rendered(answer))
    except Exception:
        # As Starlette's ServerErrorMiddleware: a plain 500, and the error goes on up.
        if not started:
            crash = PlainTextResponse("Internal Server Error", status_code=500)
            await respond(crash.status_code, crash.raw_headers, bytes(crash.body))
        raise


async def _freeze(
    ctx: GatewayContext,
    path: str,
    kind: str,
    secret: str,
    query: str,
    scope: Scope,
    receive: Receive,
) -> WebhookRequest:
    """The `WebhookRequest` that `gateway.webhooks.freeze_request` would make."""
    headers: dict[str, str] = {}
    declared = content_type = None
    for raw_name, raw_value in scope["headers"]:
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        headers[name] = value
        # Starlette's Headers.get gives the first of repeated headers.
        if name == "content-length" and declared is None:
            declared = value
        elif name == "content-type" and content_type is None:
            content_type = value
    limit = ctx.settings.max_body_bytes
    if declared and declared.isdigit() and int(declared) > limit:
        raise too_large()
    body = await _read_body(receive, limit)
    form = parse_form(body) if (content_type or "").startswith(FORM_TYPE) else None
    url = ctx.settings.public_url.rstrip("/") + path + (f"?{query}" if query else "")
    raw_query: bytes = scope.get("query_string", b"")
    return WebhookRequest(
        method="POST",
        url=url,
        path=path,
        query=dict(parse_qsl(raw_query.decode("latin-1"), keep_blank_values=True))
        if raw_query
        else {},
        headers=headers,
        body=body,
        form=form,
        kind=kind,
        path_secret=secret,
    )


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large()
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)
