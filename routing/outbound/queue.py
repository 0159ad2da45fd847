"""Outbound: which channel a message goes over, and queueing it durably.

A message and its outbox row are written in the caller's transaction, so a crash
between them loses nothing and sends nothing twice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from channels.base import SendError
from channels.sms_segments import sms_segments
from routing.config import RoutingSettings
from routing.context import AppContext
from storage.models import (
    Message,
    MessageAttempt,
    OutboxItem,
    Supporter,
    SupporterAddress,
)
from storage.queries import conversation_for

log = logging.getLogger(__name__)

WHATSAPP_WINDOW = timedelta(hours=24)
PRIORITY_REPLY = 0
PRIORITY_BULK = 1


@dataclass(frozen=True)
class ChannelChoice:
    channel: str | None
    address: str | None
    use_template: bool = False
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def reason(self) -> str:
        if not self.skipped:
            return "no channel configured"
        return "no eligible channel: " + "; ".join(f"{c}: {r}" for c, r in self.skipped.items())


def channel_order(supporter: Supporter, settings: RoutingSettings) -> list[str]:
    """The supporter's preferred channels first, then the rest of the default order; a
    data-saver supporter's SMS before all of them."""
    order: list[str] = ["sms"] if supporter.data_saver else []
    for channel in [*(supporter.preferred_channels or []), *settings.channel_order]:
        if channel not in order:
            order.append(channel)
    return order


def pick_channel(
    supporter: Supporter,
    addresses: Sequence[SupporterAddress],
    *,
    settings: RoutingSettings,
    enabled: Iterable[str],
    now: datetime,
    has_template: bool = False,
    only: str | None = None,
    exclude: Iterable[str] = (),
    ignore_opt_out: bool = False,
) -> ChannelChoice:
    """The first eligible channel in the supporter's order, with why others were skipped."""
    enabled = frozenset(enabled)
    excluded = frozenset(exclude)
    by_channel = {a.channel: a for a in addresses}
    skipped: dict[str, str] = {}
    if supporter.opted_out and not ignore_opt_out:
        return ChannelChoice(None, None, skipped={"all": "opted out"})
    for channel in [only] if only else channel_order(supporter, settings):
        address = by_channel.get(channel)
        if channel in excluded:
            skipped[channel] = "failed already"
        elif channel not in enabled:
            skipped[channel] = "not configured"
        elif address is None:
            skipped[channel] = "no address"
        elif address.opted_out:
            skipped[channel] = "opted out of this channel"
        elif channel == "whatsapp" and not window_open(address, now):
            if has_template:
                return ChannelChoice(channel, address.address, True, skipped)
            skipped[channel] = "24 h window closed and no template"
        else:
            return ChannelChoice(channel, address.address, False, skipped)
    return ChannelChoice(None, None, skipped=skipped)


def silence_deadline(start: datetime, fallback_after: int | None) -> datetime | None:
    """When a message queued for `start` falls back on silence (None: it does not)."""
    return None if fallback_after is None else start + timedelta(seconds=fallback_after)


def window_open(address: SupporterAddress, now: datetime) -> bool:
    return address.last_inbound_at is not None and now - address.last_inbound_at < WHATSAPP_WINDOW


async def addresses_of(session: AsyncSession, supporter_id: int) -> list[SupporterAddress]:
    rows = await session.exec(
        select(SupporterAddress).where(SupporterAddress.supporter_id == supporter_id)
    )
    return list(rows.all())


async def queue_message(
    session: AsyncSession,
    ctx: AppContext,
    supporter: Supporter,
    body: str,
    *,
    kind: str = "one_on_one",
    priority: int = PRIORITY_REPLY,
    channel: str | None = None,
    subject: str | None = None,
    template: dict[str, Any] | None = None,
    announcement_id: int | None = None,
    due_at: datetime | None = None,
    sent_by: str | None = None,
    allow_opted_out: bool = False,
    fallback_after: int | None = None,
    attachments: list[dict[str, Any]] | None = None,
) -> Message:
    """Write an outbound message and its outbox row (no commit: the caller's transaction).

    Opted-out supporters get a `skipped` message and no outbox row; a supporter with no
    eligible channel gets a `failed` message saying why. `allow_opted_out` is for the
    consent replies themselves (the STOP confirmation goes to someone now opted out):
    such messages are kind "consent" and the dispatcher sends them regardless.
    `fallback_after` (seconds): unless delivered or read by then, the message is sent once
    more over the next channel (routing/dispatch/silence.py).
    """
    assert supporter.id is not None
    now = ctx.clock()
    choice = pick_channel(
        supporter,
        await addresses_of(session, supporter.id),
        settings=ctx.settings,
        enabled=ctx.registry.enabled_channels,
        now=now,
        has_template=template is not None,
        only=channel,
        ignore_opt_out=allow_opted_out,
    )
    if supporter.opted_out and not allow_opted_out:
        status, error = "skipped", "opted out"
    elif choice.channel is None:
        status, error = "failed", choice.reason
    else:
        status, error = "queued", None
    convo = await conversation_for(session, supporter.id, now)
    assert convo.id is not None
    if announcement_id is None:
        # A one-on-one or a reply is conversation activity; bulk traffic is not.
        convo.last_message_at = now
        session.add(convo)
    message = Message(
        conversation_id=convo.id,
        supporter_id=supporter.id,
        direction="outbound",
        kind=kind,
        channel=choice.channel,
        address=choice.address,
        body=body,
        subject=subject,
        status=status,
        error=error,
        segments=sms_segments(body) if choice.channel == "sms" else None,
        channel_choice={"skipped": choice.skipped, "template": choice.use_template},
        template=template,
        announcement_id=announcement_id,
        sent_by=sent_by,
        attachments=list(attachments or []),
        fallback_after=fallback_after,
        fallback_at=silence_deadline(due_at or now, fallback_after) if status == "queued" else None,
        created_at=now,
        updated_at=now,
    )
    session.add(message)
    await session.flush()
    if status == "queued":
        assert message.id is not None
        session.add(
            OutboxItem(
                message_id=message.id, priority=priority, due_at=due_at or now, created_at=now
            )
        )
    return message


async def fall_back(
    session: AsyncSession, ctx: AppContext, message: Message, failure: SendError
) -> bool:
    """Move `message` to its next eligible channel after a permanent failure on this one.

    Returns True when it was re-queued; False when no channel is left (the caller marks
    it failed). Every attempt stays in `message_attempts`.
    """
    choice = await next_channel(session, ctx, message)
    if choice is None:
        return False
    if choice.channel is None:
        message.error = f"{message.channel}: {failure}; {choice.reason}"
        return False
    log.info("message %s falls back from %s to %s", message.id, message.channel, choice.channel)
    await requeue_on(session, ctx, message, choice, f"fell back after {failure}")
    return True


async def next_channel(
    session: AsyncSession, ctx: AppContext, message: Message
) -> ChannelChoice | None:
    """The supporter's next eligible channel for `message`, past every channel it was
    tried on (None: the supporter is gone)."""
    assert message.id is not None
    supporter = await session.get(Supporter, message.supporter_id)
    if supporter is None or supporter.id is None:
        return None
    tried = set(
        (
            await session.exec(
                select(MessageAttempt.channel).where(MessageAttempt.message_id == message.id)
            )
        ).all()
    )
    if message.channel:
        tried.add(message.channel)
    return pick_channel(
        supporter,
        await addresses_of(session, supporter.id),
        settings=ctx.settings,
        enabled=ctx.registry.enabled_channels,
        now=ctx.clock(),
        has_template=message.template is not None,
        exclude=tried,
    )


async def requeue_on(
    session: AsyncSession, ctx: AppContext, message: Message, choice: ChannelChoice, note: str
) -> None:
    """Queue `message` again over `choice` (a channel it was not tried on), due now."""
    assert message.id is not None
    now = ctx.clock()
    message.channel = choice.channel
    message.address = choice.address
    message.status = "queued"
    message.provider_message_id = None
    message.error = note
    message.segments = sms_segments(message.body) if choice.channel == "sms" else None
    message.channel_choice = {
        **(message.channel_choice or {}),
        "skipped": {**(message.channel_choice or {}).get("skipped", {}), **choice.skipped},
        "template": choice.use_template,
    }
    message.updated_at = now
    session.add(message)
    item = (
        await session.exec(select(OutboxItem).where(OutboxItem.message_id == message.id))
    ).first()
    if item is None:
        session.add(
            OutboxItem(message_id=message.id, priority=PRIORITY_REPLY, due_at=now, created_at=now)
        )
    else:
        item.due_at = now
        item.attempts = 0
        item.lease_owner = None
        item.lease_until = None
        session.add(item)
