"""Provider webhooks: verify, parse, store (or spool), answer. Nothing is stored or spooled
before verify passes.

POSTs are normally served by `gateway.webhooks_asgi` (a thin ASGI path in front of
FastAPI); the routes here serve the same webhooks for anything it hands on, and the GET
handshakes.
"""

from __future__ import annotations

import logging
from urllib.parse import unquote

from fastapi import APIRouter, HTTPException, Request, Response

from channels.base import (
    ChannelAdapter,
    InvalidSignature,
    MalformedPayload,
    WebhookRequest,
    WebhookResponse,
)
from gateway.auth import Context
from gateway.context import GatewayContext
from gateway.webhook_checks import unstorable
from routing.inbound.spool import submit_or_spool

log = logging.getLogger(__name__)
router = APIRouter(prefix="/webhooks", tags=["webhooks"])

MAX_FORM_FIELDS = 500
# What stands for a callback URL's secret segment in the path a WebhookRequest carries.
SECRET_SHOWN = "<secret>"
FORM_TYPE = "application/x-www-form-urlencoded"


def too_large() -> HTTPException:
    return HTTPException(413, "payload too large")


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refusing (413) anything over `limit` bytes without reading it all."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise too_large()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large()
        chunks.append(chunk)
    return b"".join(chunks)


def parse_form(body: bytes) -> tuple[tuple[str, str], ...]:
    """The form's (name, value) pairs, as `parse_qsl(..., keep_blank_values=True)` reads
    them, at about half its cost (this runs on every webhook)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HTTPException(400, f"unreadable form: {exc}") from exc
    if text.count("&") >= MAX_FORM_FIELDS:
        raise HTTPException(400, "unreadable form: too many fields")
    pairs = []
    for field in text.split("&"):
        if field:
            name, _, value = field.partition("=")
            if "+" in name:
                name = name.replace("+", " ")
            if "%" in name:
                name = unquote(name)
            if "+" in value:
                value = value.replace("+", " ")
            if "%" in value:  # unquote leaves the rest as it is, at the cost of a call
                value = unquote(value)
            pairs.append((name, value))
    return tuple(pairs)


async def freeze_request(
    request: Request, ctx: Context, kind: str, secret: str = ""
) -> WebhookRequest:
    body = await read_body(request, ctx.settings.max_body_bytes)
    content_type = request.headers.get("content-type", "")
    form = parse_form(body) if content_type.startswith(FORM_TYPE) else None
    query = request.url.query
    path = request.url.path
    if secret:
        path = shown_path(request.path_params["provider"], kind)
    url = ctx.settings.public_url.rstrip("/") + path + (f"?{query}" if query else "")
    return WebhookRequest(
        method=request.method,
        url=url,
        path=path,
        query=dict(request.query_params),
        headers={k.lower(): v for k, v in request.headers.items()},
        body=body,
        form=form,
        kind=kind,
        path_secret=secret,
    )


def webhook_target(
    adapter: ChannelAdapter, first: str | None, second: str | None
) -> tuple[str, str]:
    """(secret, kind) of the path segments after /webhooks/<provider>. For an adapter
    with `secret_in_path` (Africa's Talking) the first is the secret and the second the
    kind, and the secret is verified here, before the body is read (403); for the others
    the first is the kind, and a second one is a path they have no webhook at (404)."""
    if getattr(adapter, "secret_in_path", False):
        secret, kind = first or "", second or ""
        probe = WebhookRequest(
            method="POST",
            url="",
            path=shown_path(adapter.provider, kind),
            query={},
            headers={},
            body=b"",
            kind=kind,
            path_secret=secret,
        )
        try:
            adapter.verify(probe)
        except InvalidSignature as exc:
            log.warning("webhook %s/%s: secret rejected (%s)", adapter.provider, kind, exc)
            raise HTTPException(403, "invalid signature") from exc
        return secret, kind
    if second is not None:
        raise HTTPException(404, "Not Found")
    return "", first or ""


def shown_path(provider: str, kind: str) -> str:
    """A secret-in-path webhook's path as the request carries it on: the secret hidden."""
    return f"/webhooks/{provider}/{SECRET_SHOWN}" + (f"/{kind}" if kind else "")


def adapter_for(ctx: GatewayContext, provider: str) -> ChannelAdapter:
    adapter = ctx.registry.by_provider.get(provider)
    if adapter is None:
        raise HTTPException(404, "no such channel is configured")
    return adapter


async def process(
    adapter: ChannelAdapter, frozen: WebhookRequest, ctx: GatewayContext
) -> WebhookResponse:
    """Verify, parse and store one webhook; its answer (HTTPException on refusal)."""
    provider, kind = adapter.provider, frozen.kind
    try:
        adapter.verify(frozen)
    except InvalidSignature as exc:
        log.warning("webhook %s/%s: signature rejected (%s)", provider, kind, exc)
        raise HTTPException(403, "invalid signature") from exc
    try:
        events = adapter.parse(frozen)
    except MalformedPayload as exc:
        log.warning("webhook %s/%s: malformed payload (%s)", provider, kind, exc)
        raise HTTPException(400, f"malformed payload: {exc}") from exc
    except Exception as exc:  # any parser failure is the payload's fault
        # A parser is pure (nothing is stored yet), so whatever it raised on a signed but
        # odd payload is a 400, not a 500. Only the type is logged: the text may quote it.
        log.warning("webhook %s/%s: unparsable payload (%s)", provider, kind, type(exc).__name__)
        raise HTTPException(400, "malformed payload") from exc
    problem = unstorable(events)
    if problem is not None:
        log.warning("webhook %s/%s: malformed payload (%s)", provider, kind, problem)
        raise HTTPException(400, f"malformed payload: {problem}")
    # Group commit: answered only after the transaction holding these events commits, or,
    # when the database cannot take them in time, after they are fsync'd to the spool.
    await submit_or_spool(ctx, events, f"{provider}/{kind}" if kind else provider)
    return adapter.accepted_response(frozen)


async def webhook(request: Request) -> Response:
    # A plain Starlette route: FastAPI's dependency solving (and the thread hop of a sync
    # dependency) cost more per request than verifying and parsing the webhook.
    ctx: GatewayContext = request.app.state.ctx
    params = request.path_params
    adapter = adapter_for(ctx, params["provider"])
    secret, kind = webhook_target(adapter, params.get("kind"), params.get("sub"))
    answer = await process(adapter, await freeze_request(request, ctx, kind, secret), ctx)
    return Response(answer.body, status_code=answer.status_code, media_type=answer.media_type)


router.add_route("/webhooks/{provider}", webhook, methods=["POST"], include_in_schema=False)
router.add_route("/webhooks/{provider}/{kind}", webhook, methods=["POST"], include_in_schema=False)
# /webhooks/<provider>/<secret>/<kind>, for providers with the secret in the path.
router.add_route(
    "/webhooks/{provider}/{kind}/{sub}", webhook, methods=["POST"], include_in_schema=False
)


@router.get("/{provider}", include_in_schema=False)
async def handshake(provider: str, request: Request, ctx: Context) -> Response:
    adapter = adapter_for(ctx, provider)
    answer_handshake = getattr(adapter, "handshake", None)
    if answer_handshake is None:
        raise HTTPException(405, "this channel has no GET handshake")
    answer = answer_handshake(await freeze_request(request, ctx, ""))
    return Response(answer.body, status_code=answer.status_code, media_type=answer.media_type)
