"""A one-on-one message from an organizer: the one path for `POST
/api/v1/supporters/{id}/messages` and the console's reply box, and the explanation of
which channel it will go over (shown before sending)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from routing.context import AppContext
from routing.outbound.queue import (
    PRIORITY_REPLY,
    WHATSAPP_WINDOW,
    ChannelChoice,
    addresses_of,
    pick_channel,
    queue_message,
)
from storage.models import Message, Supporter, SupporterAddress


class CannotSend(Exception):
    """Nothing was queued: the supporter opted out or no channel can reach them now."""


@dataclass(frozen=True)
class RouteExplanation:
    """Which channel a reply would take now, and why (for people, before sending)."""

    channel: str | None
    reasons: list[str]
    whatsapp_window: str | None  # "open until …" / "closed since …" / None: no WhatsApp


def choose(
    ctx: AppContext,
    supporter: Supporter,
    addresses: Sequence[SupporterAddress],
    now: datetime,
    only: str | None = None,
) -> ChannelChoice:
    return pick_channel(
        supporter,
        addresses,
        settings=ctx.settings,
        enabled=ctx.registry.enabled_channels,
        now=now,
        only=only,
    )


def explain(
    ctx: AppContext, supporter: Supporter, addresses: Sequence[SupporterAddress], now: datetime
) -> RouteExplanation:
    """The router's pick for a reply now, with its reasons in plain words."""
    choice = choose(ctx, supporter, addresses, now)
    reasons = [f"{channel}: {why}" for channel, why in choice.skipped.items()]
    if choice.channel is not None:
        preferred = supporter.preferred_channels or []
        if choice.channel == "sms" and supporter.data_saver:
            reasons.insert(0, "sms comes first: they use data saver")
        elif choice.channel in preferred:
            reasons.insert(0, f"{choice.channel} is one of their preferred channels")
        else:
            reasons.insert(0, f"{choice.channel} is the first usable channel in the default order")
    window = None
    whatsapp = next((a for a in addresses if a.channel == "whatsapp"), None)
    if whatsapp is not None:
        if whatsapp.last_inbound_at is None:
            window = "closed (they never wrote on WhatsApp)"
        elif now - whatsapp.last_inbound_at < WHATSAPP_WINDOW:
            until = whatsapp.last_inbound_at + WHATSAPP_WINDOW
            window = f"open until {until:%Y-%m-%d %H:%M} UTC"
        else:
            window = f"closed since {whatsapp.last_inbound_at + WHATSAPP_WINDOW:%Y-%m-%d %H:%M} UTC"
    return RouteExplanation(choice.channel, reasons, window)


async def send_one_on_one(
    session: AsyncSession,
    ctx: AppContext,
    supporter: Supporter,
    body: str,
    *,
    channel: str | None = None,
    subject: str | None = None,
    sent_by: str,
    fallback_after: int | None = None,
    attachments: list[dict[str, Any]] | None = None,
) -> Message:
    """Queue `body` to `supporter` over their best channel (or `channel` only) and note the
    one-on-one on the supporter (no commit). CannotSend, with why, queues nothing."""
    assert supporter.id is not None
    if supporter.opted_out:
        raise CannotSend("the supporter opted out; they can opt back in with START")
    now = ctx.clock()
    choice = choose(ctx, supporter, await addresses_of(session, supporter.id), now, channel)
    if choice.channel is None:
        if channel:
            why = choice.skipped.get(channel, "not eligible")
            raise CannotSend(f"cannot send over {channel}: {why}")
        raise CannotSend(f"cannot reach the supporter: {choice.reason}")
    message = await queue_message(
        session,
        ctx,
        supporter,
        body,
        kind="one_on_one",
        priority=PRIORITY_REPLY,
        channel=channel,
        subject=subject,
        sent_by=sent_by,
        fallback_after=fallback_after,
        attachments=attachments,
    )
    supporter.last_one_on_one_at = now
    supporter.last_outbound_at = now
    session.add(supporter)
    return message
