"""/api/v1/webhooks: admins subscribe URLs to events (routing/webhooks/). The signing
secret is shown once, when the subscription is made. Deliveries are listed newest first;
`POST /{id}/test` sends a test event at once and says what came back (a success resumes
a paused subscription)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, HTTPException, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from sqlmodel import col, select

from gateway.api.ids import IdPath
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
from gateway.api.scope import SessionDep
from gateway.auth import Admin, Context
from routing.webhooks.delivery import record_test, send
from routing.webhooks.events import EVENT_TYPES, TEST_EVENT, join_events, refresh, split_events
from routing.webhooks.signing import new_secret
from routing.webhooks.targets import BadTarget, check_target
from storage.models import WebhookDelivery, WebhookSubscription

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

EventType = Literal[
    "message.received",
    "message.status",
    "supporter.created",
    "supporter.opted_out",
    "supporter.opted_in",
    "poll.answered",
    "event.rsvp",
]
assert set(EventType.__args__) == set(EVENT_TYPES)  # type: ignore[attr-defined]
NOT_FOUND = errors({404: "no such webhook"})


class WebhookCreate(BaseModel):
    url: str = Field(max_length=2000, description="http(s) URL that receives the events")
    events: list[EventType] = Field(min_length=1, max_length=len(EVENT_TYPES))


class WebhookPublic(BaseModel):
    id: int
    url: str
    events: list[str]
    created_at: datetime
    paused_at: datetime | None
    paused_reason: str | None
    consecutive_failures: int


class WebhookCreated(WebhookPublic):
    secret: str = Field(description="signs every delivery: shown this once")


class DeliveryPublic(BaseModel):
    id: int
    event: str
    status: str
    attempts: int
    response_status: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    next_attempt_at: datetime | None


def public(row: WebhookSubscription) -> WebhookPublic:
    return WebhookPublic(
        id=row.id or 0,
        url=row.url,
        events=split_events(row.events),
        created_at=row.created_at,
        paused_at=row.paused_at,
        paused_reason=row.paused_reason,
        consecutive_failures=row.consecutive_failures,
    )


def delivery_public(row: WebhookDelivery) -> DeliveryPublic:
    return DeliveryPublic(
        id=row.id or 0,
        event=row.event,
        status=row.status,
        attempts=row.attempts,
        response_status=row.response_status,
        last_error=row.last_error,
        created_at=row.created_at,
        delivered_at=row.delivered_at,
        next_attempt_at=row.due_at,
    )


async def _find(session: SessionDep, webhook_id: int) -> WebhookSubscription:
    row = await session.get(WebhookSubscription, webhook_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such webhook")
    return row


@router.post("", status_code=status.HTTP_201_CREATED, response_model=WebhookCreated)
async def create_webhook(
    body: WebhookCreate, _principal: Admin, ctx: Context, session: SessionDep
) -> WebhookCreated:
    try:
        await check_target(body.url, allow_private=ctx.settings.allow_private_webhooks)
    except BadTarget as exc:
        raise RequestValidationError(
            [{"loc": ("body", "url"), "msg": str(exc), "type": "value_error"}]
        ) from None
    row = WebhookSubscription(
        url=body.url, events=join_events(body.events), secret=new_secret(), created_at=ctx.clock()
    )
    session.add(row)
    await session.commit()
    await refresh(ctx)
    return WebhookCreated(**public(row).model_dump(), secret=row.secret)


@router.get("", response_model=Page[WebhookPublic])
async def list_webhooks(_principal: Admin, session: SessionDep) -> Page[WebhookPublic]:
    """Every subscription, oldest first (never their secrets)."""
    rows = (
        await session.exec(select(WebhookSubscription).order_by(col(WebhookSubscription.id)))
    ).all()
    return Page(items=[public(r) for r in rows], next_cursor=None)


@router.get("/{webhook_id}", response_model=WebhookPublic, responses=NOT_FOUND)
async def get_webhook(webhook_id: IdPath, _principal: Admin, session: SessionDep) -> WebhookPublic:
    return public(await _find(session, webhook_id))


@router.delete("/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def delete_webhook(
    webhook_id: IdPath, _principal: Admin, ctx: Context, session: SessionDep
) -> Response:
    """Unsubscribe: its pending deliveries and log go with it."""
    await session.delete(await _find(session, webhook_id))
    await session.commit()
    await refresh(ctx)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{webhook_id}/deliveries", response_model=Page[DeliveryPublic], responses=NOT_FOUND)
async def list_deliveries(
    webhook_id: IdPath,
    _principal: Admin,
    session: SessionDep,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[DeliveryPublic]:
    """Its deliveries, newest first."""
    await _find(session, webhook_id)
    after = decode_cursor(cursor, (int,))
    query = select(WebhookDelivery).where(WebhookDelivery.subscription_id == webhook_id)
    if after:
        query = query.where(col(WebhookDelivery.id) < after[0])
    rows = (
        await session.exec(query.order_by(col(WebhookDelivery.id).desc()).limit(limit + 1))
    ).all()
    page, more = split_page(list(rows), limit)
    return Page(
        items=[delivery_public(r) for r in page],
        next_cursor=encode_cursor(page[-1].id) if more else None,
    )


@router.post("/{webhook_id}/test", response_model=DeliveryPublic, responses=NOT_FOUND)
async def test_webhook(
    webhook_id: IdPath, _principal: Admin, ctx: Context, session: SessionDep
) -> DeliveryPublic:
    """Send a `webhook.test` event now, signed like any other; the delivery as it ended
    (`delivered`, or `failed` with the answer). Not retried."""
    subscription = await _find(session, webhook_id)
    now = ctx.clock()
    delivery = WebhookDelivery(
        subscription_id=webhook_id, event=TEST_EVENT, status="sending", created_at=now
    )
    session.add(delivery)
    await session.commit()
    outcome = await send(ctx, subscription, delivery)
    assert delivery.id is not None
    row = await record_test(ctx, delivery.id, outcome)
    return delivery_public(row)
