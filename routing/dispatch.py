"""The dispatcher: claim due outbox rows, rate-limit, send, record the outcome.

Exactly once, as far as a provider without idempotency keys allows: an attempt row is
committed before `send` and the provider's id after it, in the transaction that removes
the outbox row. A crash between the provider's accept and that commit leaves an attempt
without a provider id; after the lease expires the message is sent again (the one
at-least-once window). Every other crash point re-sends nothing or sends nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random as _random
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import update
from sqlmodel import col

from channels.base import (
    ChannelAdapter,
    OutboundMessage,
    ProviderUnavailable,
    SendError,
)
from gateway.context import AppContext
from routing.claim import Claimed, claim_batch, release
from routing.compose import compose, prepare_email_threading
from routing.dispatch_outcome import (
    finish,
    record_failure,
    record_success,
    send_blocker,
    settle_interrupted,
)
from routing.quiet_hours import hold_until
from routing.ratelimit import RateLimits, sender_buckets
from storage.models import Message, MessageAttempt, OutboxItem, Supporter

log = logging.getLogger(__name__)

IDLE_SECONDS = 0.5
STOP_GRACE_SECONDS = 10.0
# The STOP confirmation goes to someone who just opted out (queue_message allow_opted_out).
SENT_WHEN_OPTED_OUT = frozenset({"consent"})


@dataclass(frozen=True)
class Prepared:
    outbound: OutboundMessage
    attempt_id: int


def default_owner() -> str:
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Dispatcher:
    """Drive it step by step (`await run_once()`) or as a service (`start` / `stop`)."""

    def __init__(
        self,
        ctx: AppContext,
        *,
        owner: str | None = None,
        concurrency: int | None = None,
        lease_seconds: float | None = None,
        random: Callable[[], float] = _random.random,
        limits: RateLimits | None = None,
    ) -> None:
        self.ctx = ctx
        self.owner = owner or default_owner()
        self.concurrency = concurrency or ctx.settings.dispatch_concurrency
        self.lease_seconds = lease_seconds or ctx.settings.lease_seconds
        # A send must end well inside its lease, or another dispatcher could take it over.
        self.send_timeout = self.lease_seconds / 2
        self.random = random
        self.limits = limits or RateLimits()
        self._semaphore = asyncio.Semaphore(self.concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self._sending: set[asyncio.Task[None]] = set()
        self._signal = asyncio.Event()
        self._stopping = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None

    # -- step by step -------------------------------------------------------------
    async def run_once(self, limit: int | None = None) -> int:
        """Claim one batch of due rows, process them all; the number claimed."""
        claimed = await claim_batch(
            self.ctx, self.owner, limit or self.concurrency, self.lease_seconds
        )
        await asyncio.gather(*(self._guarded(item) for item in claimed))
        return len(claimed)

    async def run_until_idle(self, max_rounds: int = 1000) -> int:
        total = 0
        for _ in range(max_rounds):
            done = await self.run_once()
            if not done:
                break
            total += done
        return total

    # -- as a service ---------------------------------------------------------------
    async def start(self) -> None:
        self._runner = asyncio.create_task(self.run(), name=f"dispatcher {self.owner}")

    def wake(self) -> None:
        """New work was queued: claim now instead of at the end of the idle wait."""
        self._signal.set()

    async def run(self) -> None:
        if not self.ctx.registry.enabled_channels:
            log.warning("no channels configured; the dispatcher idles")
            await self._stopping.wait()
            return
        log.info("dispatcher %s started (%s in flight)", self.owner, self.concurrency)
        while not self._stopping.is_set():
            self._signal.clear()
            free = self.concurrency - len(self._tasks)
            # Claim in chunks rather than one row per finished send.
            if free >= max(1, self.concurrency // 4) or not self._tasks:
                try:
                    claimed = await claim_batch(self.ctx, self.owner, free, self.lease_seconds)
                except Exception:
                    log.exception("claiming outbox rows failed")
                    claimed = []
                for item in claimed:
                    self._spawn(item)
                if claimed and len(claimed) == free:
                    continue
            try:
                await asyncio.wait_for(self._signal.wait(), IDLE_SECONDS)
            except TimeoutError:
                pass

    async def stop(self) -> None:
        """Stop claiming, let sends in flight finish (up to 10 s), release the rest."""
        self._stopping.set()
        self._signal.set()
        if self._runner is not None:
            await self._runner
        for task in list(self._tasks):
            if task not in self._sending:
                task.cancel()  # not at the provider yet: give the row back
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=STOP_GRACE_SECONDS)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        released = await release(self.ctx, self.owner)
        log.info("dispatcher %s stopped; %s leases released", self.owner, released)

    def _spawn(self, item: Claimed) -> None:
        task = asyncio.create_task(self._guarded(item))
        self._tasks.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            self._sending.discard(t)
            self._signal.set()

        task.add_done_callback(done)

    # -- one row ----------------------------------------------------------------
    async def _guarded(self, item: Claimed) -> None:
        async with self._semaphore:
            try:
                await self.process(item)
            except Exception:
                # The lease runs out and the row is tried again; never kill the loop.
                log.exception("dispatching outbox row %s failed", item.outbox_id)

    async def process(self, item: Claimed) -> None:
        adapter = self.ctx.registry.for_channel(item.channel) if item.channel else None
        if adapter is not None and item.channel and item.address:
            postpone = await self.limits.take(
                sender_buckets(self.limits, adapter, item.channel, item.address, self.ctx.settings),
                max_wait=self._lease_left(item),
            )
            if postpone:
                await self._postpone(item, postpone)
                return
        prepared = await self._prepare(item, adapter)
        if prepared is None or adapter is None:
            return
        task = asyncio.current_task()
        if task is not None and task in self._tasks:
            self._sending.add(task)
        try:
            result = await asyncio.wait_for(adapter.send(prepared.outbound), self.send_timeout)
        except Exception as exc:
            if not isinstance(exc, SendError):
                log.warning("send of message %s raised %s", item.message_id, type(exc).__name__)
                exc = ProviderUnavailable(type(exc).__name__)
            await self._record_failure(item, prepared.attempt_id, exc)
        else:
            async with self.ctx.sessions() as session:
                attempt = await session.get(MessageAttempt, prepared.attempt_id)
                assert attempt is not None
                await record_success(session, self.ctx, attempt, result)
                await session.commit()

    def _lease_left(self, item: Claimed) -> float:
        # Wait for a token only while the send can still end inside the lease.
        left = (item.lease_until - self.ctx.clock()).total_seconds() - self.send_timeout
        return max(0.0, left)

    async def _postpone(self, item: Claimed, seconds: float) -> None:
        async with self.ctx.sessions() as session:
            await session.exec(
                update(OutboxItem)
                .where(col(OutboxItem.id) == item.outbox_id)
                .where(col(OutboxItem.lease_owner) == self.owner)
                .values(
                    due_at=self.ctx.clock() + timedelta(seconds=seconds),
                    lease_owner=None,
                    lease_until=None,
                )
            )
            await session.commit()

    async def _record_failure(self, item: Claimed, attempt_id: int | None, exc: Exception) -> None:
        async with self.ctx.sessions() as session:
            message = await session.get(Message, item.message_id)
            attempt = await session.get(MessageAttempt, attempt_id) if attempt_id else None
            if message is None:
                return
            await record_failure(session, self.ctx, message, attempt, exc, random=self.random)
            await session.commit()

    async def _prepare(self, item: Claimed, adapter: ChannelAdapter | None) -> Prepared | None:
        """Re-check everything that may have changed since queueing, then commit an
        attempt row; None when the message is not to be sent now."""
        ctx = self.ctx
        async with ctx.sessions() as session:
            row = await session.get(OutboxItem, item.outbox_id)
            if row is None or row.lease_owner != self.owner:
                return None  # lost the lease: someone else has it
            message = await session.get(Message, row.message_id)
            assert message is not None and message.id is not None
            if message.status != "queued" or not message.channel:
                await session.delete(row)
                await session.commit()
                return None
            await settle_interrupted(session, message.id)
            supporter = await session.get(Supporter, message.supporter_id)
            assert supporter is not None
            now = ctx.clock()
            if supporter.opted_out and message.kind not in SENT_WHEN_OPTED_OUT:
                await finish(session, ctx, message, "skipped", "opted out")
                await session.commit()
                return None
            held = hold_until(
                now=now,
                kind=message.kind,
                priority=row.priority,
                timezone=supporter.timezone,
                default_timezone=ctx.settings.default_timezone,
                quiet_start=ctx.settings.quiet_hours_start,
                quiet_end=ctx.settings.quiet_hours_end,
            )
            if held is not None:
                row.due_at, row.lease_owner, row.lease_until = held, None, None
                session.add(row)
                await session.commit()
                log.info("message %s held for quiet hours until %s", message.id, held)
                return None
            problem, use_template = await send_blocker(session, ctx, message, adapter)
            if problem is not None:
                await record_failure(session, ctx, message, None, problem, random=self.random)
                await session.commit()
                return None
            if message.channel == "email":
                await prepare_email_threading(session, message, ctx.settings)
            attempt = MessageAttempt(
                message_id=message.id,
                channel=message.channel,
                address=message.address or "",
                status="queued",
                created_at=now,
            )
            session.add(attempt)
            row.attempts += 1
            session.add(row)
            await session.flush()
            outbound = compose(message, use_template=use_template)
            assert attempt.id is not None
            await session.commit()
        return Prepared(outbound, attempt.id)
