"""Live activity for open console pages: which conversations got new messages or delivery
statuses. One feed per process, however many pages listen (one shared look at the
database, not one per connection), so open pages cost ingest next to nothing.

The feed is woken at once by this process's ingest commits (`AppContext.inbound_signal`,
told by routing/inbound after each committed batch: the embedded default runs webhooks and
console in one process) and otherwise looks every `poll` seconds while anyone listens, which
finds what other processes wrote (several servers on PostgreSQL, `rallypoint worker`'s
delivery statuses). Each look reads only rows newer than the last one seen (primary-key
range scans); bursts are coalesced (`min_gap`), and a burst larger than `MAX_ROWS` simply
wakes every listener.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from routing.context import AppContext
from storage.models import Message, MessageStatusEvent

log = logging.getLogger(__name__)

MAX_ROWS = 500
FEED = "console_feed"


@dataclass(eq=False)
class Listener:
    """One open page: `conversation_id` None listens to every conversation (the inbox)."""

    conversation_id: int | None
    event: asyncio.Event = field(default_factory=asyncio.Event)


class ActivityFeed:
    def __init__(self, ctx: AppContext, *, poll: float = 2.0, min_gap: float = 0.2) -> None:
        self.ctx = ctx
        self.poll = poll
        self.min_gap = min_gap
        self._listeners: set[Listener] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._last_message: int | None = None
        self._last_event: int | None = None
        self._starting = asyncio.Lock()
        self._unsubscribe = ctx.inbound_signal.subscribe(self.wake)
        self.looks = 0  # how many times the database was read (tests, stats)

    @property
    def listeners(self) -> int:
        return len(self._listeners)

    def wake(self) -> None:
        """Look now (called after an ingest commit; cheap when nobody listens)."""
        if self._listeners:
            self._wake.set()

    async def subscribe(self, conversation_id: int | None) -> Listener:
        """A new listener; from the moment this returns, every change wakes it."""
        async with self._starting:
            if self._last_message is None:
                await self._baseline()  # before listening: nothing after this is missed
        listener = Listener(conversation_id)
        self._listeners.add(listener)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="console-feed")
        return listener

    def unsubscribe(self, listener: Listener) -> None:
        self._listeners.discard(listener)
        if not self._listeners:
            self._wake.set()  # let the loop see it is alone and end

    async def newest_message_id(self) -> int:
        async with self.ctx.sessions() as session:
            return await newest_message_id(session)

    async def aclose(self) -> None:
        self._unsubscribe()
        self._listeners.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def _run(self) -> None:
        while self._listeners:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll)
            self._wake.clear()
            if not self._listeners:
                break
            try:
                changed = await self._changes()
            except Exception:  # a database hiccup: the next look catches up
                log.warning("console feed could not look for changes", exc_info=True)
                changed = set()
            for listener in list(self._listeners):
                if changed is None or (
                    changed
                    and (listener.conversation_id is None or listener.conversation_id in changed)
                ):
                    listener.event.set()
            await asyncio.sleep(self.min_gap)

    async def _baseline(self) -> None:
        async with self.ctx.sessions() as session:
            self._last_message = await newest_message_id(session)
            self._last_event = int(
                (await session.exec(select(func.max(col(MessageStatusEvent.id))))).first() or 0
            )

    async def _changes(self) -> set[int] | None:
        """Conversation ids with new messages or statuses since the last look; None: too
        many to list (everyone looks)."""
        self.looks += 1
        changed: set[int] = set()
        overflow = False
        async with self.ctx.sessions() as session:
            messages = list(
                (
                    await session.exec(
                        select(Message.id, Message.conversation_id)
                        .where(col(Message.id) > (self._last_message or 0))
                        .order_by(col(Message.id))
                        .limit(MAX_ROWS)
                    )
                ).all()
            )
            events = list(
                (
                    await session.exec(
                        select(MessageStatusEvent.id, Message.conversation_id)
                        .join(Message, col(Message.id) == col(MessageStatusEvent.message_id))
                        .where(col(MessageStatusEvent.id) > (self._last_event or 0))
                        .order_by(col(MessageStatusEvent.id))
                        .limit(MAX_ROWS)
                    )
                ).all()
            )
        if messages:
            self._last_message = int(messages[-1][0] or 0)
        if events:
            self._last_event = int(events[-1][0] or 0)
        for rows in (messages, events):
            changed.update(int(c) for _, c in rows)
            overflow = overflow or len(rows) == MAX_ROWS
        return None if overflow else changed


async def newest_message_id(session: AsyncSession) -> int:
    """The highest message id (0 for none): pages note it so the feed can tell them, when
    they connect, that something came in after they were rendered."""
    return int((await session.exec(select(func.max(col(Message.id))))).first() or 0)


def feed_for(ctx: AppContext) -> ActivityFeed:
    """The process's feed, made on first use (closed with the context's services)."""
    feed = ctx.services.get(FEED)
    if not isinstance(feed, ActivityFeed):
        feed = ActivityFeed(ctx)
        ctx.services[FEED] = feed
    return feed
