"""The delivery loop: claims due webhook deliveries with leases, signs and sends them.

Runs wherever the dispatcher runs (`serve` in-process, `rallypoint worker`). A row is
leased before it is sent (`LEASE_SECONDS`, longer than the send timeout) and its outcome
written after, so a crash between the two leaves it to be sent again once the lease ends:
at least once, never lost. A 2xx answer delivers; anything else (or no answer in
`TIMEOUT_SECONDS`) is retried with exponential backoff until `GIVE_UP_AFTER`. A
subscription whose deliveries have all failed for `GIVE_UP_AFTER`, or `PAUSE_AFTER_FAILURES`
in a row, is paused with the reason (a successful test event resumes it).
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy import or_, select, update

from routing.context import AppContext
from routing.webhooks.events import (
    DELIVERIES,
    REFRESH_SECONDS,
    SUBSCRIPTIONS,
    refresh,
    subscribed,
)
from routing.webhooks.payloads import body_for
from routing.webhooks.signing import HEADER, signature
from routing.webhooks.targets import BadTarget, check_target
from storage.models import WebhookDelivery, WebhookSubscription

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 10.0
LEASE_SECONDS = 60.0
GIVE_UP_AFTER = timedelta(hours=24)
PAUSE_AFTER_FAILURES = 100
FIRST_RETRY_SECONDS = 30.0
MAX_RETRY_SECONDS = 3600.0
BATCH = 100


def backoff(attempts: int) -> timedelta:
    """The wait after the `attempts`-th failure: 30 s, 1 min, 2 min, ... at most 1 h."""
    return timedelta(seconds=min(FIRST_RETRY_SECONDS * 2 ** (attempts - 1), MAX_RETRY_SECONDS))


def _naive(value: datetime) -> datetime:
    return value.replace(tzinfo=None)


@dataclass(frozen=True)
class Outcome:
    ok: bool
    response_status: int | None
    error: str | None


async def send(
    ctx: AppContext, subscription: WebhookSubscription, delivery: WebhookDelivery
) -> Outcome:
    """Render, sign and POST one delivery; what came of it (never raises for the wire)."""
    try:
        await check_target(subscription.url, allow_private=ctx.settings.allow_private_webhooks)
    except BadTarget as exc:
        return Outcome(False, None, str(exc))
    async with ctx.sessions() as session:
        body = await body_for(session, delivery)
    timestamp = int(ctx.clock().timestamp())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Rallypoint-Webhooks/1",
        HEADER: signature(subscription.secret, timestamp, body),
    }
    try:
        response = await ctx.http_client.post(
            subscription.url,
            content=body,
            headers=headers,
            timeout=TIMEOUT_SECONDS,
            follow_redirects=False,
        )
    except httpx.TimeoutException:
        return Outcome(False, None, f"no answer in {TIMEOUT_SECONDS:g} s")
    except httpx.HTTPError as exc:
        return Outcome(False, None, f"{type(exc).__name__}: could not connect or send")
    if 200 <= response.status_code < 300:
        return Outcome(True, response.status_code, None)
    return Outcome(False, response.status_code, f"HTTP {response.status_code}")


async def claim(ctx: AppContext, owner: str, limit: int = BATCH) -> list[int]:
    """Lease up to `limit` due deliveries of active subscriptions; their ids."""
    now = ctx.clock()
    async with ctx.sessions() as session:
        rows = await session.execute(
            select(DELIVERIES.c.id)
            .join(SUBSCRIPTIONS, SUBSCRIPTIONS.c.id == DELIVERIES.c.subscription_id)
            .where(
                DELIVERIES.c.due_at <= now,
                or_(DELIVERIES.c.lease_until.is_(None), DELIVERIES.c.lease_until < now),
                SUBSCRIPTIONS.c.paused_at.is_(None),
            )
            .order_by(DELIVERIES.c.due_at, DELIVERIES.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=DELIVERIES)
        )
        ids = [int(r[0]) for r in rows]
        if ids:
            await session.execute(
                update(DELIVERIES)
                .where(DELIVERIES.c.id.in_(ids))
                .values(lease_owner=owner, lease_until=now + timedelta(seconds=LEASE_SECONDS))
            )
        await session.commit()
    return ids


async def record(ctx: AppContext, delivery_id: int, outcome: Outcome) -> None:
    """Write what came of one attempt, and of its subscription."""
    now = ctx.clock()
    async with ctx.sessions() as session:
        delivery = await session.get(WebhookDelivery, delivery_id)
        if delivery is None:  # its subscription (or subject) was deleted meanwhile
            return
        subscription = await session.get(WebhookSubscription, delivery.subscription_id)
        assert subscription is not None
        delivery.attempts += 1
        delivery.response_status = outcome.response_status
        delivery.last_error = outcome.error
        delivery.lease_owner = delivery.lease_until = None
        paused = False
        if outcome.ok:
            delivery.status, delivery.due_at, delivery.delivered_at = "delivered", None, now
            subscription.consecutive_failures, subscription.failing_since = 0, None
        else:
            if _naive(now) - _naive(delivery.created_at) >= GIVE_UP_AFTER:
                delivery.status, delivery.due_at = "failed", None
            else:
                delivery.due_at = now + backoff(delivery.attempts)
            subscription.consecutive_failures += 1
            subscription.failing_since = subscription.failing_since or now
            paused = _pause_if_failing(subscription, outcome, now)
        session.add_all([delivery, subscription])
        await session.commit()
    if paused:
        await refresh(ctx)


def _pause_if_failing(subscription: WebhookSubscription, outcome: Outcome, now: datetime) -> bool:
    if subscription.paused_at is not None:
        return False
    since = subscription.failing_since
    assert since is not None
    if _naive(now) - _naive(since) >= GIVE_UP_AFTER:
        why = "every delivery failed for 24 h"
    elif subscription.consecutive_failures >= PAUSE_AFTER_FAILURES:
        why = f"{subscription.consecutive_failures} deliveries failed in a row"
    else:
        return False
    subscription.paused_at = now
    subscription.paused_reason = f"{why} (last: {outcome.error})"
    log.warning("webhook subscription=%s paused: %s", subscription.id, why)
    return True


async def deliver_one(ctx: AppContext, delivery_id: int) -> None:
    async with ctx.sessions() as session:
        delivery = await session.get(WebhookDelivery, delivery_id)
        subscription = (
            await session.get(WebhookSubscription, delivery.subscription_id)
            if delivery is not None
            else None
        )
    if delivery is None or subscription is None:
        return
    outcome = await send(ctx, subscription, delivery)
    log.info(
        "webhook delivery=%s subscription=%s event=%s: %s",
        delivery_id,
        subscription.id,
        delivery.event,
        "delivered" if outcome.ok else outcome.error,
    )
    await record(ctx, delivery_id, outcome)


async def deliver_due(ctx: AppContext, owner: str, limit: int = BATCH) -> int:
    """Claim and send what is due (concurrently); how many were tried."""
    ids = await claim(ctx, owner, limit)
    await asyncio.gather(*(deliver_one(ctx, i) for i in ids))
    return len(ids)


class WebhookDeliverer:
    """The background service: `deliver_due` until stopped, refreshing the cache of
    subscribed event types (routing/webhooks/events.py) as it goes."""

    def __init__(self, ctx: AppContext, *, poll_seconds: float = 1.0) -> None:
        self.ctx = ctx
        self.poll_seconds = poll_seconds
        self.owner = f"webhooks-{os.getpid()}-{id(self):x}"
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await refresh(self.ctx)
        self._stop.clear()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        refreshed = loop.time()
        while not self._stop.is_set():
            tried = 0
            try:
                if loop.time() - refreshed >= REFRESH_SECONDS:
                    await refresh(self.ctx)
                    refreshed = loop.time()
                # No active subscription, nothing to claim: an idle loop costs no query.
                if subscribed(self.ctx):
                    tried = await deliver_due(self.ctx, self.owner)
            except Exception:  # the loop must outlive a database hiccup
                log.exception("webhook delivery round failed; retrying")
            if tried == 0:
                try:
                    await asyncio.wait_for(self._stop.wait(), self.poll_seconds)
                except TimeoutError:
                    pass


async def record_test(ctx: AppContext, delivery_id: int, outcome: Outcome) -> WebhookDelivery:
    """Write a test event's one attempt. A success resumes a paused subscription (the
    receiver answers again); a failure counts against nothing."""
    now = ctx.clock()
    async with ctx.sessions() as session:
        delivery = await session.get(WebhookDelivery, delivery_id)
        assert delivery is not None
        delivery.attempts = 1
        delivery.status = "delivered" if outcome.ok else "failed"
        delivery.delivered_at = now if outcome.ok else None
        delivery.response_status, delivery.last_error = outcome.response_status, outcome.error
        session.add(delivery)
        resumed = False
        subscription = await session.get(WebhookSubscription, delivery.subscription_id)
        if outcome.ok and subscription is not None and subscription.paused_at is not None:
            subscription.paused_at = subscription.paused_reason = None
            subscription.consecutive_failures, subscription.failing_since = 0, None
            session.add(subscription)
            resumed = True
        await session.commit()
    if resumed:
        await refresh(ctx)
    return delivery
