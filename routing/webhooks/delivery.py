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
from sqlalchemy import or_, update
from sqlmodel import col, select

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
BATCH = 64  # deliveries claimed (and sent concurrently) at once
LANES = 4  # batches being sent at once, each claimed as another finishes
IN_FLIGHT = BATCH * LANES  # sends in flight at most (the HTTP pool holds 256)


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
    ctx: AppContext,
    subscription: WebhookSubscription,
    delivery: WebhookDelivery,
    *,
    body: bytes | None = None,
    target_problem: str | None = None,
    checked: bool = False,
) -> Outcome:
    """Render, sign and POST one delivery; what came of it (never raises for the wire).
    A batch passes the body it rendered and its one check of the subscription's URL."""
    if not checked:
        target_problem = await target_check(ctx, subscription.url)
    if target_problem is not None:
        return Outcome(False, None, target_problem)
    if body is None:
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


async def target_check(ctx: AppContext, url: str) -> str | None:
    """Why `url` may not be sent to now (SSRF rules), or None."""
    try:
        await check_target(url, allow_private=ctx.settings.allow_private_webhooks)
    except BadTarget as exc:
        return str(exc)
    return None


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


async def deliver_due(ctx: AppContext, owner: str, limit: int = BATCH) -> int:
    """Claim and send what is due (concurrently); how many were tried."""
    ids = await claim(ctx, owner, limit)
    await deliver_batch(ctx, ids)
    return len(ids)


async def deliver_batch(ctx: AppContext, ids: list[int]) -> None:
    """Send claimed deliveries at once: read in one session (bodies rendered there), each
    subscription's URL checked once, sent concurrently, and the successes written in one
    transaction (a failure goes through `record`, which may pause its subscription)."""
    if not ids:
        return
    async with ctx.sessions() as session:
        deliveries = (
            await session.exec(select(WebhookDelivery).where(col(WebhookDelivery.id).in_(ids)))
        ).all()
        wanted = {d.subscription_id for d in deliveries}
        subscriptions = {
            s.id: s
            for s in (
                await session.exec(
                    select(WebhookSubscription).where(col(WebhookSubscription.id).in_(wanted))
                )
            ).all()
        }
        work = [
            (d, subscriptions[d.subscription_id], await body_for(session, d))
            for d in deliveries
            if d.subscription_id in subscriptions
        ]
    problems = {
        sid: await target_check(ctx, s.url) for sid, s in subscriptions.items() if s.id is not None
    }
    outcomes = await asyncio.gather(
        *(
            send(
                ctx,
                subscription,
                delivery,
                body=body,
                target_problem=problems.get(delivery.subscription_id),
                checked=True,
            )
            for delivery, subscription, body in work
        )
    )
    for (delivery, subscription, _), outcome in zip(work, outcomes, strict=True):
        log.info(
            "webhook delivery=%s subscription=%s event=%s: %s",
            delivery.id,
            subscription.id,
            delivery.event,
            "delivered" if outcome.ok else outcome.error,
        )
    await record_delivered(
        ctx, [(d, o) for (d, _, _), o in zip(work, outcomes, strict=True) if o.ok]
    )
    for (delivery, _, _), outcome in zip(work, outcomes, strict=True):
        if not outcome.ok and delivery.id is not None:
            await record(ctx, delivery.id, outcome)


async def record_delivered(
    ctx: AppContext, delivered: list[tuple[WebhookDelivery, Outcome]]
) -> None:
    """Write successful attempts, one UPDATE per answer status, and reset their
    subscriptions' failure counts, in one transaction."""
    if not delivered:
        return
    now = ctx.clock()
    by_status: dict[int | None, list[int]] = {}
    for delivery, outcome in delivered:
        if delivery.id is not None:
            by_status.setdefault(outcome.response_status, []).append(delivery.id)
    async with ctx.sessions() as session:
        for response_status, ids in by_status.items():
            await session.execute(
                update(DELIVERIES)
                .where(DELIVERIES.c.id.in_(ids))
                .values(
                    attempts=DELIVERIES.c.attempts + 1,
                    status="delivered",
                    due_at=None,
                    delivered_at=now,
                    response_status=response_status,
                    last_error=None,
                    lease_owner=None,
                    lease_until=None,
                )
            )
        await session.execute(
            update(SUBSCRIPTIONS)
            .where(SUBSCRIPTIONS.c.id.in_({d.subscription_id for d, _ in delivered}))
            .values(consecutive_failures=0, failing_since=None)
        )
        await session.commit()


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
        """Claim a batch whenever fewer than `LANES` are being sent, so one slow receiver's
        batch does not hold up the next; claims are made by this one task, so no two
        batches of a process share a row."""
        loop = asyncio.get_running_loop()
        refreshed = loop.time()
        sending: set[asyncio.Task[None]] = set()
        stopping = asyncio.create_task(self._stop.wait())
        while not self._stop.is_set():
            claimed = 0
            try:
                if loop.time() - refreshed >= REFRESH_SECONDS:
                    await refresh(self.ctx)
                    refreshed = loop.time()
                # No active subscription, nothing to claim: an idle loop costs no query.
                if len(sending) < LANES and subscribed(self.ctx):
                    ids = await claim(self.ctx, self.owner)
                    claimed = len(ids)
                    if ids:
                        task = asyncio.create_task(self._send(ids))
                        sending.add(task)
                        task.add_done_callback(sending.discard)
            except Exception:  # the loop must outlive a database hiccup
                log.exception("webhook delivery round failed; retrying")
            if claimed and len(sending) < LANES:
                continue
            # Wait for a batch to finish (room for the next), the poll interval, or stop.
            await asyncio.wait(
                {stopping, *sending},
                timeout=self.poll_seconds,
                return_when=asyncio.FIRST_COMPLETED,
            )
        stopping.cancel()
        if sending:
            await asyncio.gather(*sending, return_exceptions=True)

    async def _send(self, ids: list[int]) -> None:
        try:
            await deliver_batch(self.ctx, ids)
        except Exception:  # leased rows are tried again when their lease ends
            log.exception("webhook delivery batch failed; retrying after the lease")


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
