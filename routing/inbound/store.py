"""Ingestion: provider-neutral webhook events into one conversation per supporter.

Idempotent on (channel, provider message id): a provider's retry, or the same webhook
arriving twice at once, stores one message. Everything one event causes (the message,
the supporter it creates, automatic replies and their outbox rows) commits together.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from channels.base import ChannelOptOut, InboundMessage, StatusUpdate, WebhookEvent
from channels.graphemes import truncate
from routing.context import AppContext
from routing.delivery.status import apply_status_update
from routing.organizing import reactions as automations
from routing.organizing.automation import Inbound
from routing.people.addresses import PHONE_CHANNELS
from routing.people.consent import record_consent
from routing.people.do_not_contact import bar_if_listed
from routing.people.merge import is_throwaway, merge_supporter
from routing.webhooks.events import emit_many as emit_webhooks
from routing.webhooks.events import received
from storage.models import Message, Supporter, SupporterAddress
from storage.queries import conversation_for

log = logging.getLogger(__name__)

MAX_TRIES = 3


@dataclass
class IngestReport:
    stored: list[int] = field(default_factory=list)
    duplicates: int = 0
    statuses: int = 0


async def ingest(ctx: AppContext, events: list[WebhookEvent]) -> IngestReport:
    """Store `events` in one transaction; retried when a concurrent twin wins a race."""
    for attempt in range(1, MAX_TRIES + 1):
        report = IngestReport()
        async with ctx.sessions() as session:
            try:
                for event in events:
                    await ingest_one(session, ctx, event, report)
                await session.commit()
                ctx.inbound_signal.notify()
                return report
            except IntegrityError:
                await session.rollback()
                if attempt == MAX_TRIES:
                    raise
                log.info("ingest raced with a concurrent duplicate; retrying")
    raise AssertionError("unreachable")


async def ingest_one(
    session: AsyncSession, ctx: AppContext, event: WebhookEvent, report: IngestReport
) -> None:
    if isinstance(event, InboundMessage):
        message = await store_inbound(session, ctx, event)
        if message is None:
            report.duplicates += 1
        else:
            assert message.id is not None
            report.stored.append(message.id)
    elif isinstance(event, StatusUpdate):
        await apply_status_update(session, ctx, event)
        report.statuses += 1
    elif isinstance(event, ChannelOptOut):
        await apply_channel_opt_out(session, ctx, event)


async def find_address(
    session: AsyncSession, channel: str, address: str
) -> SupporterAddress | None:
    """The address row, matching a phone number across sms and whatsapp."""
    channels = sorted(PHONE_CHANNELS) if channel in PHONE_CHANNELS else [channel]
    rows = (
        await session.exec(
            select(SupporterAddress).where(
                SupporterAddress.address == address, col(SupporterAddress.channel).in_(channels)
            )
        )
    ).all()
    exact = [row for row in rows if row.channel == channel]
    candidates = exact or list(rows)
    return candidates[0] if candidates else None


async def resolve_supporter(
    session: AsyncSession,
    channel: str,
    address: str,
    name: str | None,
    now: datetime,
    *,
    erasure_key: str | None = None,
) -> tuple[Supporter, SupporterAddress]:
    """The supporter holding `address`, or a new one marked as having written first (opted
    out when the address is on the do-not-contact list: erased before, opted out)."""
    row = await find_address(session, channel, address)
    if row is not None and row.channel == channel:
        supporter = await session.get(Supporter, row.supporter_id)
        assert supporter is not None
        return supporter, row
    if row is not None:
        # Same phone number on the other phone channel: same supporter, new address row.
        supporter = await session.get(Supporter, row.supporter_id)
        assert supporter is not None
    else:
        supporter = Supporter(
            name=truncate(name or address, 200), source="inbound", created_at=now, updated_at=now
        )
        session.add(supporter)
        await session.flush()
    assert supporter.id is not None
    new_row = SupporterAddress(supporter_id=supporter.id, channel=channel, address=address)
    session.add(new_row)
    await session.flush()
    if row is None:
        await bar_if_listed(
            session, supporter, [(channel, address)], erasure_key=erasure_key, now=now
        )
    return supporter, new_row


async def link_telegram_chat(
    session: AsyncSession, event: InboundMessage, now: datetime
) -> tuple[Supporter, SupporterAddress] | None:
    """Telegram `/start <token>`: attach the chat to the supporter who was given that link
    token (used once), instead of whoever the chat is now. A supporter the chat created by
    writing first is merged into them when it is nothing more than that (is_throwaway)."""
    if event.channel != "telegram" or not event.start_payload:
        return None
    supporter = (
        await session.exec(
            select(Supporter).where(Supporter.telegram_link_token == event.start_payload)
        )
    ).first()
    if supporter is None:
        return None
    assert supporter.id is not None
    held = await find_address(session, event.channel, event.address)
    # A supporter has one Telegram chat: a new account replaces the old one.
    row = (
        await session.exec(
            select(SupporterAddress).where(
                SupporterAddress.supporter_id == supporter.id,
                SupporterAddress.channel == "telegram",
            )
        )
    ).first()
    previous = None
    if held is not None and held.supporter_id != supporter.id:
        previous = await session.get(Supporter, held.supporter_id)
        if row is not None:
            await session.delete(row)
            await session.flush()  # its chat goes before the moved one arrives
        row, held.supporter_id = held, supporter.id
    elif row is None:
        row = SupporterAddress(supporter_id=supporter.id, channel="telegram", address="")
    row.address, row.opted_out = event.address, False  # a chat that sends /start is open
    supporter.telegram_link_token = None  # one use: a forwarded link cannot claim them again
    supporter.updated_at = now
    session.add_all([row, supporter])
    await session.flush()
    if previous is None:
        log.info("telegram chat linked to supporter=%s by deep link", supporter.id)
    elif await is_throwaway(session, previous):
        log.info(
            "telegram chat linked to supporter=%s by deep link; supporter=%s it had made "
            "merged into them",
            supporter.id,
            previous.id,
        )
        await merge_supporter(session, previous, supporter, now)
    else:
        log.info(
            "telegram chat moved from supporter=%s to supporter=%s by deep link; not merged "
            "(the former has other addresses, tags, teams or an assignee)",
            previous.id,
            supporter.id,
        )
    return supporter, row


async def is_duplicate(session: AsyncSession, channel: str, provider_message_id: str) -> bool:
    found = (
        await session.exec(
            select(Message.id).where(
                Message.channel == channel, Message.provider_message_id == provider_message_id
            )
        )
    ).first()
    return found is not None


def stored_one_by_one(event: InboundMessage) -> bool:
    """Whether `store_inbound` does more for this message than store it, whatever the
    automations: a Telegram deep link to follow, or a sender the channel could not verify
    (kept from counting as the supporter's activity). The set-based paths leave it here."""
    return event.sender_verified is False or bool(event.start_payload)


async def store_inbound(
    session: AsyncSession, ctx: AppContext, event: InboundMessage
) -> Message | None:
    """Store one inbound message; None when it was stored before."""
    if await is_duplicate(session, event.channel, event.provider_message_id):
        return None
    now = ctx.clock()
    # Mail from a sender the channel could not verify (a forgeable From) is stored and left
    # unread for an organizer, but sets nothing off: no consent change, reply, poll answer,
    # onboarding step or chat link. The bulk and lane paths store it through here.
    acts = event.sender_verified is not False
    linked = await link_telegram_chat(session, event, now) if acts else None
    supporter, address = linked or await resolve_supporter(
        session,
        event.channel,
        event.address,
        event.profile_name,
        now,
        erasure_key=ctx.settings.erasure_key,
    )
    assert supporter.id is not None
    convo = await conversation_for(session, supporter.id, now)
    assert convo.id is not None
    message = Message(
        conversation_id=convo.id,
        supporter_id=supporter.id,
        direction="inbound",
        kind="inbound",
        channel=event.channel,
        address=event.address,
        body=event.body,
        subject=event.subject,
        status="received",
        provider_message_id=event.provider_message_id,
        attachments=[a.as_dict() for a in event.attachments],
        email_message_id=event.email_message_id,
        in_reply_to=event.in_reply_to,
        references=event.references,
        raw=event.raw,
        sender_verified=event.sender_verified,
        created_at=now,
        updated_at=now,
    )
    session.add(message)
    if acts:
        # Activity, read by inactivity lists, nudges and stats (and the WhatsApp window):
        # a forgeable From says nothing about whether the supporter is active.
        supporter.last_inbound_at = now
        supporter.updated_at = now
        address.last_inbound_at = now
    convo.last_message_at = now
    convo.unread = True
    convo.unread_count += 1
    convo.status, convo.snoozed_until = "open", None  # a new message reopens it
    await session.flush()
    log.info(
        "inbound stored: message=%s supporter=%s channel=%s%s",
        message.id,
        supporter.id,
        event.channel,
        "" if acts else " (sender not verified: no automation)",
    )
    if acts:
        # Every ingest path writes these the same way (bulk.py, lane.py: set-based).
        await emit_webhooks(session, "message.received", [received(message)], now)
        inbound = Inbound(event=event, message=message, supporter=supporter, address=address)
        await automations.react_to_inbound(session, ctx, inbound)
    return message


async def apply_channel_opt_out(
    session: AsyncSession, ctx: AppContext, event: ChannelOptOut
) -> None:
    """The provider says the recipient left (or came back to) the channel."""
    row = (
        await session.exec(
            select(SupporterAddress).where(
                SupporterAddress.channel == event.channel,
                SupporterAddress.address == event.address,
            )
        )
    ).first()
    if row is None:
        log.info("channel opt-out for an unknown address on %s; ignored", event.channel)
        return
    row.opted_out = event.opted_out
    supporter = await session.get(Supporter, row.supporter_id)
    assert supporter is not None
    if event.opted_out:
        await record_consent(
            session,
            supporter,
            "opt_out",
            channel=event.channel,
            reason=event.reason,
            now=ctx.clock(),
        )
