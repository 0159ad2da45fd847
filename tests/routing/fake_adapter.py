"""An in-test adapter: records what it was asked to send, raises scripted SendErrors,
and can hold a send open (before or after "the provider" accepted it) for crash tests.
A fake, not a mock: it implements channels.base.ChannelAdapter."""

from __future__ import annotations

import asyncio
import itertools
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select

from channels.base import (
    Capabilities,
    Channel,
    OutboundMessage,
    SendError,
    SendResult,
    WebhookEvent,
    WebhookRequest,
    WebhookResponse,
)
from routing.context import AppContext
from routing.dispatch.dispatcher import Dispatcher
from routing.dispatch.ratelimit import RateLimits
from routing.outbound.queue import queue_message
from storage.models import (
    Message,
    MessageAttempt,
    MessageStatusEvent,
    OutboxItem,
    Supporter,
)
from storage.queries import conversation_for
from tests.gateway.seed import add_member

_ids = itertools.count(1)


@dataclass
class FakeAdapter:
    channels: tuple[Channel, ...] = ("sms",)
    provider: str = "fake"
    rate_per_second: float | None = None
    per_recipient_rate: float | None = None
    calls: list[OutboundMessage] = field(default_factory=list)  # every send() call
    accepted: list[tuple[str, OutboundMessage]] = field(default_factory=list)  # (id, message)
    errors: dict[str, deque[SendError]] = field(default_factory=lambda: defaultdict(deque))
    hold_before_accept: set[str] = field(default_factory=set)  # addresses
    hold_after_accept: set[str] = field(default_factory=set)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    held: int = 0
    clock: Callable[[], datetime] | None = None  # when set, call_times records each send
    call_times: list[datetime] = field(default_factory=list)

    def fail(self, address: str, *errors: SendError) -> None:
        """The next sends to `address` raise these errors, in order."""
        self.errors[address].extend(errors)

    def sent_to(self, address: str) -> list[OutboundMessage]:
        return [m for _, m in self.accepted if m.to == address]

    def verify(self, request: WebhookRequest) -> None:
        return None

    def parse(self, request: WebhookRequest) -> list[WebhookEvent]:
        return []

    def accepted_response(self, request: WebhookRequest) -> WebhookResponse:
        return WebhookResponse()

    def capabilities(self, channel: Channel) -> Capabilities:
        return Capabilities(max_length=None, media=True, needs_open_window=channel == "whatsapp")

    def sender_key(self, channel: Channel) -> str:
        return f"{self.provider}:{channel}"

    async def send(self, message: OutboundMessage) -> SendResult:
        await asyncio.sleep(0)  # a real provider call yields: let other sends interleave
        self.calls.append(message)
        if self.clock is not None:
            self.call_times.append(self.clock())
        if message.to in self.hold_before_accept:
            self.held += 1
            await self.release.wait()
        queue = self.errors.get(message.to)  # the answer comes after any hold
        if queue:
            raise queue.popleft()
        provider_id = f"{self.provider}-{next(_ids)}"
        self.accepted.append((provider_id, message))
        if message.to in self.hold_after_accept:
            self.held += 1
            await self.release.wait()
        return SendResult(provider_message_id=provider_id)

    async def aclose(self) -> None:
        return None


# -- helpers the dispatcher tests share ------------------------------------------------


def fake_sleep_for(clock: object) -> Callable[[float], Awaitable[None]]:
    """A sleep that moves the FakeClock instead of waiting."""

    async def sleep(seconds: float) -> None:
        target = clock() + timedelta(seconds=seconds)  # type: ignore[operator]
        await asyncio.sleep(0)
        if clock() < target:  # type: ignore[operator]
            clock.set(target)  # type: ignore[attr-defined]

    return sleep


async def with_adapters(
    make_client: Callable[..., Awaitable[Any]], *adapters: FakeAdapter, **settings: Any
) -> tuple[Any, AppContext]:
    """A test client (settings overrides as for `make_client`) whose registry also holds
    `adapters`, and its context."""
    client = await make_client(**settings)
    ctx: AppContext = client.ctx
    for adapter in adapters:
        ctx.registry.add(adapter)
    return client, ctx


def make_dispatcher(ctx: AppContext, clock: object, **kwargs: Any) -> Dispatcher:
    """A dispatcher on the test's clock: no real sleeping, deterministic jitter."""
    limits = RateLimits(
        clock=lambda: clock().timestamp(),  # type: ignore[operator]
        sleep=fake_sleep_for(clock),
    )
    kwargs.setdefault("random", lambda: 1.0)  # full step: 2 s, 4 s, 8 s …
    return Dispatcher(ctx, limits=limits, **kwargs)


async def add_supporter(
    ctx: AppContext,
    addresses: dict[str, str],
    *,
    name: str = "Ada",
    preferred: list[str] | None = None,
    timezone: str | None = None,
    last_inbound_at: datetime | None = None,
) -> int:
    """A supporter who prefers their channels in the order given, unless told otherwise;
    `last_inbound_at` is each address's last inbound (the WhatsApp window)."""
    return await add_member(
        ctx,
        addresses,
        name=name,
        preferred=preferred or list(addresses),
        timezone=timezone,
        address_last_inbound_at=last_inbound_at,
    )


async def sent_message(
    ctx: AppContext,
    supporter_id: int,
    channel: str,
    address: str,
    provider_message_id: str | None,
    *,
    status: str = "sent",
    body: str = "See you Saturday",
    with_attempt: bool = True,
) -> int:
    """An outbound message already handed to the provider, as the dispatcher leaves it:
    the Message row and (unless told otherwise) its MessageAttempt."""
    now = ctx.clock()
    async with ctx.sessions() as session:
        convo = await conversation_for(session, supporter_id, now)
        assert convo.id is not None
        message = Message(
            conversation_id=convo.id,
            supporter_id=supporter_id,
            direction="outbound",
            channel=channel,
            address=address,
            body=body,
            status=status,
            provider_message_id=provider_message_id,
            created_at=now,
            updated_at=now,
        )
        session.add(message)
        await session.flush()
        assert message.id is not None
        if with_attempt:
            session.add(
                MessageAttempt(
                    message_id=message.id,
                    channel=channel,
                    address=address,
                    provider_message_id=provider_message_id,
                    status=status,
                    created_at=now,
                )
            )
        await session.commit()
        return message.id


async def queue(ctx: AppContext, supporter_id: int, body: str = "hello", **kwargs: Any) -> int:
    async with ctx.sessions() as session:
        supporter = await session.get(Supporter, supporter_id)
        assert supporter is not None
        message = await queue_message(session, ctx, supporter, body, **kwargs)
        await session.commit()
        assert message.id is not None
        return message.id


async def load(ctx: AppContext, message_id: int) -> Message:
    async with ctx.sessions() as session:
        message = await session.get(Message, message_id)
        assert message is not None
        return message


async def attempts_of(ctx: AppContext, message_id: int) -> list[MessageAttempt]:
    async with ctx.sessions() as session:
        rows = await session.exec(
            select(MessageAttempt)
            .where(MessageAttempt.message_id == message_id)
            .order_by(col(MessageAttempt.id))
        )
        return list(rows.all())


async def outbox_of(ctx: AppContext, message_id: int) -> OutboxItem | None:
    async with ctx.sessions() as session:
        query = select(OutboxItem).where(OutboxItem.message_id == message_id)
        return (await session.exec(query)).first()


async def events_of(ctx: AppContext, message_id: int) -> list[tuple[str | None, str]]:
    async with ctx.sessions() as session:
        rows = await session.exec(
            select(MessageStatusEvent)
            .where(MessageStatusEvent.message_id == message_id)
            .order_by(col(MessageStatusEvent.id))
        )
        return [(e.channel, e.status) for e in rows.all()]


async def until(predicate: Callable[[], Awaitable[bool]], tries: int = 2000) -> None:
    """Poll a condition the dispatcher's own tasks make true (bounded: ~10 s)."""
    for _ in range(tries):
        if await predicate():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not reached")


async def unrecorded(ctx: AppContext) -> int:
    """Attempts handed to a provider whose result was never recorded (no provider id)."""
    async with ctx.sessions() as session:
        query = (
            select(func.count())
            .select_from(MessageAttempt)
            .where(col(MessageAttempt.provider_message_id).is_(None))
        )
        return int((await session.exec(query)).one())


def take_over_channels(ctx: AppContext, adapter: FakeAdapter) -> None:
    """`adapter` becomes the only provider of its channels (a configured Twilio would
    otherwise still be picked by RALLYPOINT_SMS_ROUTES for sms)."""
    registry = ctx.registry
    for name, other in list(registry.by_provider.items()):
        if set(other.channels) & set(adapter.channels):
            del registry.by_provider[name]
    registry.add(adapter)
