"""Erasing a supporter: every row about them deleted (not hidden), in one transaction.

Deleted: the supporter (name, fields), addresses, tags, team memberships, their
conversation and every message in it (bodies, raw payloads, attachments' metadata), each
message's attempts, status events, outbox row and stray early status callbacks, poll
answers, onboarding state and consent history. Kept: an announcement's delivery counts
(folded into `erased_deliveries`, ids and bodies gone) and, for each address that had
opted out, a keyed hash on the do-not-contact list (routing/people/do_not_contact.py).
SQLite's `secure_delete` and a WAL checkpoint afterwards (storage/db.py) take the bytes out
of the database files too.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, tuple_
from sqlalchemy import select as sa_select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from routing.people.do_not_contact import bar, hash_key
from storage.field_values import delete_values_of
from storage.models import (
    ConsentEvent,
    Conversation,
    ConversationNote,
    ErasedDelivery,
    EventRsvp,
    Message,
    MessageAttempt,
    MessageStatusEvent,
    OnboardingState,
    OutboxItem,
    PendingStatus,
    PollAnswer,
    Supporter,
    SupporterAddress,
    SupporterSearchTerm,
    SupporterTag,
    TeamMembership,
    WebhookDelivery,
)

# Every foreign key to supporters, conversations or messages: all of these rows go. A new
# reference makes tests fail (tests/routing/test_erasure_references.py) until it is deleted
# here, rather than left to a cascade nobody checked or, worse, to a SET NULL that keeps it.
HANDLED_REFERENCES = frozenset(
    {
        ("consent_events", "supporter_id"),
        ("conversation_notes", "conversation_id"),
        ("conversations", "supporter_id"),
        ("event_rsvps", "supporter_id"),
        ("message_attempts", "message_id"),
        ("message_status_events", "message_id"),
        ("messages", "conversation_id"),
        ("messages", "supporter_id"),
        ("onboarding_states", "supporter_id"),
        ("outbox", "message_id"),
        ("poll_answers", "supporter_id"),
        ("supporter_addresses", "supporter_id"),
        ("supporter_field_values", "supporter_id"),
        ("supporter_search_terms", "supporter_id"),
        ("supporter_tags", "supporter_id"),
        ("team_memberships", "supporter_id"),
        ("webhook_deliveries", "message_id"),
        ("webhook_deliveries", "supporter_id"),
    }
)


async def erase_supporter(
    session: AsyncSession, supporter: Supporter, *, erasure_key: str | None, now: datetime
) -> None:
    """Delete everything about `supporter` (flushed; the caller commits)."""
    sid = supporter.id
    assert sid is not None
    addresses = (
        await session.execute(
            select(
                SupporterAddress.channel, SupporterAddress.address, SupporterAddress.opted_out
            ).where(col(SupporterAddress.supporter_id) == sid)
        )
    ).all()
    opted_out = [(c, a) for c, a, out in addresses if out or supporter.opted_out]
    if opted_out:
        key = await hash_key(session, erasure_key, now, create=True)
        assert key is not None
        await bar(session, key, opted_out, now)
    await _keep_announcement_counts(session, sid)
    messages = select(col(Message.id)).where(col(Message.supporter_id) == sid)
    attempts = select(col(MessageAttempt.channel), col(MessageAttempt.provider_message_id)).where(
        col(MessageAttempt.message_id).in_(messages),
        col(MessageAttempt.provider_message_id).is_not(None),
    )
    await session.execute(
        delete(PendingStatus).where(
            tuple_(col(PendingStatus.channel), col(PendingStatus.provider_message_id)).in_(attempts)
        )
    )
    # Outgoing webhook events about them not delivered yet (or kept in the log) go too.
    await session.execute(
        delete(WebhookDelivery).where(
            (col(WebhookDelivery.supporter_id) == sid)
            | col(WebhookDelivery.message_id).in_(messages)
        )
    )
    for table in (MessageStatusEvent, MessageAttempt, OutboxItem):
        await session.execute(delete(table).where(col(table.message_id).in_(messages)))
    convos = select(col(Conversation.id)).where(col(Conversation.supporter_id) == sid)
    # Organizers' private notes on their conversation are about them too.
    await session.execute(
        delete(ConversationNote).where(col(ConversationNote.conversation_id).in_(convos))
    )
    await session.execute(
        delete(Message).where(
            (col(Message.supporter_id) == sid) | col(Message.conversation_id).in_(convos)
        )
    )
    for owned in (
        Conversation,
        PollAnswer,
        EventRsvp,
        ConsentEvent,
        OnboardingState,
        SupporterTag,
        TeamMembership,
        SupporterAddress,
        SupporterSearchTerm,
    ):
        await session.execute(delete(owned).where(col(owned.supporter_id) == sid))
    await delete_values_of(session, sid)
    await session.execute(delete(Supporter).where(col(Supporter.id) == sid))
    await session.flush()
    session.expunge(supporter)


async def _keep_announcement_counts(session: AsyncSession, supporter_id: int) -> None:
    """Fold the supporter's announcement messages into per-status counts (one still
    queued counts as skipped: it will not be sent now)."""
    rows = (
        await session.execute(
            sa_select(
                col(Message.announcement_id),
                col(Message.status),
                col(Message.channel),
                func.count(),
                func.coalesce(func.sum(col(Message.segments)), 0),
            )
            .where(
                col(Message.supporter_id) == supporter_id,
                col(Message.announcement_id).is_not(None),
            )
            .group_by(col(Message.announcement_id), col(Message.status), col(Message.channel))
        )
    ).all()
    for announcement_id, stored_status, channel, count, segments in rows:
        # A message not yet handed to a provider never will be: it counts as skipped.
        status = "skipped" if stored_status == "queued" else stored_status
        row = (
            await session.exec(
                select(ErasedDelivery).where(
                    col(ErasedDelivery.announcement_id) == announcement_id,
                    col(ErasedDelivery.status) == status,
                    col(ErasedDelivery.channel).is_(None)
                    if channel is None
                    else col(ErasedDelivery.channel) == channel,
                )
            )
        ).first()
        if row is None:
            row = ErasedDelivery(announcement_id=announcement_id, status=status, channel=channel)
        row.count += int(count)
        row.segments += int(segments) if channel == "sms" else 0
        session.add(row)
