"""The dispatcher: claim due outbox rows in chunks, rate-limit, send, record the outcome.

Exactly once, as far as a provider without idempotency keys allows: the chunk's attempt
rows are committed with its claim, before any send (routing/dispatch/batch.py), and each
provider id is committed after the send, in the batch that removes the outbox row
(routing/dispatch/record.py). A crash between the provider's accept and that commit
leaves an attempt without a provider id; after the lease expires it is settled as
interrupted and the message is sent again (the one at-least-once window). Every other
crash point re-sends nothing or sends nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random as _random
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import col, select

from channels.base import (
    ChannelAdapter,
    ChannelMisconfigured,
    ProviderUnavailable,
    SendError,
    SendResult,
    SentLookup,
)
from routing.context import AppContext
from routing.dispatch.batch import Ready, claim_ready
from routing.dispatch.breaker import Breakers, Change, CircuitOpen
from routing.dispatch.circuits import save_change
from routing.dispatch.claim import release
from routing.dispatch.liveness import BEAT_SECONDS, Liveness
from routing.dispatch.ratelimit import RETAKE, RateLimits, sender_buckets
from routing.dispatch.record import Outcome, Recorder
from routing.outbound.cancel import CANCELLED
from storage.models import Announcement, MessageAttempt

log = logging.getLogger(__name__)

STOP_GRACE_SECONDS = 10.0
# How often a dispatcher holding rows of announcements asks whether any was cancelled.
CANCEL_CHECK_SECONDS = 1.0
# Rows claimed ahead of the send slots, at most: enough to keep every slot busy while the
# next chunk is claimed, few enough that a chunk goes out well inside its lease. A refill
# comes once this many slots (or all, when fewer) are free, so each claim is that large.
MAX_AHEAD = 250


@dataclass(eq=False)
class _Job:
    ready: Ready
    # "waiting" (for a send slot or a rate-limit token), "sending", "recording".
    phase: str = "waiting"


class _Turn:
    """One supporter's queue of sends: asyncio locks are first come, first served."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


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
        breakers: Breakers | None = None,
        liveness: Liveness | None = None,
        beat_seconds: float = BEAT_SECONDS,
    ) -> None:
        self.ctx = ctx
        self.owner = owner or default_owner()
        self.concurrency = concurrency or ctx.settings.dispatch_concurrency
        self.chunk = self.concurrency + min(self.concurrency, MAX_AHEAD)
        self.lease_seconds = lease_seconds or ctx.settings.lease_seconds
        # A send must end well inside its lease, or another dispatcher could take it over.
        self.send_timeout = self.lease_seconds / 2
        self.random = random
        self.poll_seconds = ctx.settings.dispatch_poll_seconds
        self.limits = limits or RateLimits()
        self.breakers = breakers or Breakers(ctx.clock)
        self._circuit_write: asyncio.Task[None] | None = None
        self.liveness = liveness or Liveness(ctx, self.owner)
        self.beat_seconds = beat_seconds
        self._beats: asyncio.Task[None] | None = None
        self._first_claim_after = 0.0  # time.monotonic()
        self.recorder = Recorder(ctx, self.owner, random=random)
        self._semaphore = asyncio.Semaphore(self.concurrency)
        self._jobs: dict[asyncio.Task[None], _Job] = {}
        self._turns: dict[int, _Turn] = {}
        self._signal = asyncio.Event()
        self._stopping = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._unsubscribe: Callable[[], None] | None = None
        # Claims `run` has made (for tests and stats).
        self.rounds = 0
        self._next_cancel_check: datetime | None = None

    # -- step by step -------------------------------------------------------------
    async def run_once(self, limit: int | None = None) -> int:
        """Claim one chunk of due rows, process them all; the number claimed."""
        claimed, ready = await self._claim(limit or self.chunk)
        await asyncio.gather(*(self._dispatch(_Job(item)) for item in ready))
        return claimed

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
        # Rows this process queues wake it once committed; others wait for the next poll.
        self._unsubscribe = self.ctx.outbox_signal.subscribe(self.wake)
        live = 1
        try:
            # A dispatcher that died on this host (a crash, kill -9) left rows leased:
            # they are sent now, not when the leases run out.
            await self.liveness.take_over_dead()
            live = await self.liveness.register()
        except Exception:
            log.exception("registering dispatcher %s failed", self.owner)
        self.limits.share = 1 / live
        if live > 1:
            # The others pace each sender at their old share until their next beat.
            self._first_claim_after = time.monotonic() + self.beat_seconds + 0.5
        self._beats = asyncio.create_task(self._beat(), name=f"heartbeat {self.owner}")
        self._runner = asyncio.create_task(self.run(), name=f"dispatcher {self.owner}")

    async def _beat(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.beat_seconds)
            if self._stopping.is_set():
                return
            try:
                if await self.liveness.take_over_dead():
                    self.wake()
                self.limits.share = 1 / await self.liveness.beat()
            except Exception:
                log.exception("dispatcher %s heartbeat failed", self.owner)

    def wake(self) -> None:
        """New work was queued: claim now instead of at the end of the idle wait. Any
        number of wakes before the next claim make one claim."""
        self._signal.set()

    async def run(self) -> None:
        if not self.ctx.registry.enabled_channels:
            log.warning("no channels configured; the dispatcher idles")
            await self._stopping.wait()
            return
        log.info("dispatcher %s started (%s in flight)", self.owner, self.concurrency)
        pause = self._first_claim_after - time.monotonic()
        if pause > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), pause)
        while not self._stopping.is_set():
            self._signal.clear()
            pending = len(self._jobs)
            # Refill once a chunk's worth of slots is free, so sends never run dry.
            if pending <= self.concurrency:
                room = self.chunk - pending
                try:
                    claimed, ready = await self._claim(room)
                except Exception:
                    log.exception("claiming outbox rows failed")
                    claimed, ready = 0, []
                self.rounds += 1
                for item in ready:
                    self._spawn(_Job(item))
            try:
                await self._learn_cancellations()
            except Exception:
                log.exception("looking up cancelled announcements failed")
                if claimed and claimed == room:
                    continue
            try:
                await asyncio.wait_for(self._signal.wait(), self.poll_seconds)
            except TimeoutError:
                pass

    async def stop(self) -> None:
        """Stop claiming, let sends in flight finish (up to 10 s), release the rest."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self._stopping.set()
        self._signal.set()
        if self._runner is not None:
            await self._runner
        unsent = []
        for task, job in list(self._jobs.items()):
            if job.phase == "waiting":
                task.cancel()  # not at the provider yet: give the row back
                unsent.append(job.ready)
        if self._jobs:
            _, pending = await asyncio.wait(set(self._jobs), timeout=STOP_GRACE_SECONDS)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if unsent:
            try:
                await self.recorder.record(*(Outcome(r, give_back=True) for r in unsent))
            except Exception:
                log.exception("giving back %s unsent rows failed", len(unsent))
        await self.recorder.aclose()
        await self.flush_circuits()
        released = await release(self.ctx, self.owner)
        if self._beats is not None:
            await asyncio.gather(self._beats, return_exceptions=True)
            try:
                await self.liveness.unregister()
            except Exception:
                log.exception("unregistering dispatcher %s failed", self.owner)
        log.info("dispatcher %s stopped; %s leases released", self.owner, released)

    def _spawn(self, job: _Job) -> None:
        task = asyncio.create_task(self._dispatch(job))
        self._jobs[task] = job

        def done(t: asyncio.Task[None]) -> None:
            self._jobs.pop(t, None)
            self._signal.set()

        task.add_done_callback(done)

    async def _learn_cancellations(self) -> None:
        """Which announcements of the rows still waiting for their turn were cancelled,
        asked at most every CANCEL_CHECK_SECONDS and only while some wait (a cancel in
        another process; one in this process is known at once)."""
        now = self.ctx.clock()
        if self._next_cancel_check is not None and now < self._next_cancel_check:
            return
        known = self.ctx.cancelled_announcements
        waiting = {
            job.ready.announcement_id
            for job in self._jobs.values()
            if job.phase == "waiting" and job.ready.announcement_id is not None
        } - known
        if not waiting:
            return
        self._next_cancel_check = now + timedelta(seconds=CANCEL_CHECK_SECONDS)
        async with self.ctx.sessions() as session:
            found = await session.execute(
                select(col(Announcement.id)).where(
                    col(Announcement.id).in_(waiting), col(Announcement.state) == CANCELLED
                )
            )
            known.update(found.scalars())

    async def _claim(self, limit: int) -> tuple[int, list[Ready]]:
        return await claim_ready(
            self.ctx, self.owner, limit, self.lease_seconds, random=self.random
        )

    # -- one row ----------------------------------------------------------------
    async def _dispatch(self, job: _Job) -> None:
        try:
            async with self._turn(job.ready.supporter_id):
                outcome = await self._send(job)
            job.phase = "recording"
            await self.recorder.record(outcome)
        except Exception:
            # The lease runs out and the row is tried again; never kill the loop.
            log.exception("dispatching outbox row %s failed", job.ready.outbox_id)

    @contextlib.asynccontextmanager
    async def _turn(self, supporter_id: int) -> AsyncIterator[None]:
        """One supporter's rows go to the provider one after another, in claim order, so a
        reply queued first arrives first (onboarding's question before the welcome);
        different supporters' rows are still sent concurrently."""
        turn = self._turns.setdefault(supporter_id, _Turn())
        turn.users += 1
        try:
            async with turn.lock:
                yield
        finally:
            turn.users -= 1
            if not turn.users:
                del self._turns[supporter_id]

    async def _send(self, job: _Job) -> Outcome:
        item = job.ready
        # The provider the claim picked (by RALLYPOINT_SMS_ROUTES for SMS) and recorded.
        adapter = self.ctx.registry.by_provider.get(item.provider or "")
        if adapter is None:
            return Outcome(item, error=ChannelMisconfigured(f"{item.channel} is not configured"))
        circuit = (item.channel, adapter.sender_key(item.channel))  # type: ignore[arg-type]
        async with self._semaphore:
            left = self._lease_left(item)
            if left < 0:
                return Outcome(item, give_back=True)  # the lease is (nearly) gone
            if item.interrupted_since is not None and isinstance(adapter, SentLookup):
                taken = await self._taken_before(adapter, item)
                if taken is not None:
                    return Outcome(item, result=SendResult(provider_message_id=taken))
            closed_until, change = self.breakers.admit(circuit)
            if closed_until is not None:
                return Outcome(item, error=CircuitOpen(item.channel, closed_until))
            self._note(change)
            postpone = RETAKE
            while postpone == RETAKE:  # until a wait ends on the sender's current bucket
                buckets = sender_buckets(
                    self.limits, adapter, item.channel, item.address, item.outbound
                )
                postpone = await self.limits.take(buckets, max_wait=self._lease_left(item))
            if postpone:
                due = self.ctx.clock() + timedelta(seconds=postpone)
                return Outcome(item, give_back=True, due_at=due)
            if item.announcement_id in self.ctx.cancelled_announcements:
                # Cancelled while it waited its turn: given back, the next claim skips it.
                return Outcome(item, give_back=True)
            job.phase = "sending"
            try:
                # In this task and this step, not wait_for's: the rate guard counted the
                # send just now, and a stall before the request left would bunch it with
                # later ones at the provider.
                async with asyncio.timeout(self.send_timeout):
                    result = await adapter.send(item.outbound)
            except Exception as exc:
                if not isinstance(exc, SendError):
                    log.warning("send of message %s raised %s", item.message_id, type(exc).__name__)
                    exc = ProviderUnavailable(type(exc).__name__)
                self._note(self.breakers.record(circuit, exc))
                return Outcome(item, error=exc)
        self._note(self.breakers.record(circuit, None))
        return Outcome(item, result=result)

    async def _taken_before(self, adapter: ChannelAdapter, item: Ready) -> str | None:
        """The provider id of this message if the provider took it before a crash lost its
        answer: one of its messages to the address with this content since the interrupted
        try that no attempt of ours has recorded. None when it did not, or cannot say."""
        assert isinstance(adapter, SentLookup) and item.interrupted_since is not None
        try:
            found = await adapter.find_sent(item.outbound, item.interrupted_since)
            if not found:
                return None
            async with self.ctx.sessions() as session:
                known = set(
                    (
                        await session.exec(
                            select(MessageAttempt.provider_message_id).where(
                                col(MessageAttempt.provider_message_id).in_(found)
                            )
                        )
                    ).all()
                )
        except Exception as exc:
            log.warning(
                "message %s: could not ask %s whether it was sent (%s); sending again",
                item.message_id,
                item.channel,
                type(exc).__name__,
            )
            return None
        taken = next((pid for pid in found if pid not in known), None)
        if taken is not None:
            log.warning(
                "message %s: the provider took it before the crash; not sent again", item.message_id
            )
        return taken

    def _note(self, change: Change | None) -> None:
        """Write a circuit's change for /healthz, off the send path."""
        if change is None:
            return
        if change.state == "open":
            log.warning(
                "%s circuit open after %s outages in a row", change.channel, change.failures
            )
        elif change.state == "closed":
            log.warning("%s circuit closed: a send went through", change.channel)
        # One after another, so the table ends with the last change.
        self._circuit_write = asyncio.create_task(
            self._save_circuit(change, after=self._circuit_write)
        )

    async def flush_circuits(self) -> None:
        """Wait until every circuit change so far is written."""
        if self._circuit_write is not None:
            await asyncio.gather(self._circuit_write, return_exceptions=True)

    async def _save_circuit(self, change: Change, after: asyncio.Task[None] | None) -> None:
        if after is not None:
            await asyncio.gather(after, return_exceptions=True)
        try:
            await save_change(self.ctx, change)
        except Exception:
            log.exception("storing the %s circuit's state failed", change.channel)

    def _lease_left(self, item: Ready) -> float:
        # Wait for a token only while the send can still end inside the lease.
        return (item.lease_until - self.ctx.clock()).total_seconds() - self.send_timeout
