"""Folding a supporter that a chat created by writing first into the one it turns out to be.

Used when a Telegram deep link claims a chat that already wrote to us: the supporter the
chat created is merged into the link's supporter, in the caller's transaction.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.field_values import VALUES
from storage.models import (
    ConsentEvent,
    Conversation,
    ConversationNote,
    EventRsvp,
    Message,
    OnboardingState,
    PollAnswer,
    Supporter,
    SupporterAddress,
    SupporterSearchTerm,
    SupporterTag,
    TeamMembership,
    WebhookDelivery,
)
from storage.queries import conversation_for

# Every column that refers to a supporter or a conversation, and so every row a merge must
# think about: moved (messages, consent events, poll answers, the conversation's counts),
# dropped on purpose (onboarding state) or never there for a throwaway (addresses, tags,
# teams, custom field values). A new reference makes tests fail until it is handled here:
# deleting the source would otherwise cascade and silently lose those rows.
HANDLED_REFERENCES = frozenset(
    {
        ("consent_events", "supporter_id"),
        ("event_rsvps", "supporter_id"),
        ("conversation_notes", "conversation_id"),
        ("conversations", "supporter_id"),
        ("messages", "conversation_id"),
        ("messages", "supporter_id"),
        ("onboarding_states", "supporter_id"),
        ("poll_answers", "supporter_id"),
        ("supporter_addresses", "supporter_id"),
        ("supporter_field_values", "supporter_id"),
        ("supporter_search_terms", "supporter_id"),
        ("supporter_tags", "supporter_id"),
        ("team_memberships", "supporter_id"),
        ("webhook_deliveries", "supporter_id"),
    }
)


async def is_throwaway(session: AsyncSession, supporter: Supporter) -> bool:
    """Whether `supporter`, whose address has just moved, was only what that address made
    by writing first: created from an inbound message, with no other address and nothing
    an organizer gave it (tags, a team, an assignee, custom field values). Anything more
    and a merge could fold two people into one."""
    if supporter.source != "inbound" or supporter.assigned_to is not None:
        return False
    sid = supporter.id
    for statement in (
        select(SupporterAddress.id).where(SupporterAddress.supporter_id == sid),
        select(SupporterTag.tag).where(SupporterTag.supporter_id == sid),
        select(TeamMembership.team_id).where(TeamMembership.supporter_id == sid),
        select(VALUES.c.field_id).where(VALUES.c.supporter_id == sid),
    ):
        if (await session.execute(statement.limit(1))).first() is not None:
            return False
    return True


async def merge_supporter(
    session: AsyncSession, source: Supporter, target: Supporter, now: datetime
) -> None:
    """Move what a throwaway `source` (see is_throwaway; its address already moved) has
    to `target` and delete it: its messages (into the target's one conversation), consent
    history and poll answers (where the target has not answered that poll). The target's
    opt-out becomes the union of the two. Onboarding the source was in is dropped: the
    target is already known."""
    assert source.id is not None and target.id is not None
    old, new = source.id, target.id
    convo = await conversation_for(session, new, now)
    old_convo = (
        await session.exec(select(Conversation).where(col(Conversation.supporter_id) == old))
    ).first()
    # One message per supporter per announcement: a copy the target also got stays as
    # history but no longer counts for the announcement.
    target_announcements = select(Message.announcement_id).where(
        col(Message.supporter_id) == new, col(Message.announcement_id).is_not(None)
    )
    await session.execute(
        update(Message)
        .where(
            col(Message.supporter_id) == old,
            col(Message.announcement_id).in_(target_announcements),
        )
        .values(announcement_id=None)
    )
    await session.execute(
        update(Message)
        .where(col(Message.supporter_id) == old)
        .values(supporter_id=new, conversation_id=convo.id)
    )
    if old_convo is not None:
        times = [t for t in (convo.last_message_at, old_convo.last_message_at) if t]
        convo.last_message_at = max(times, default=None)
        convo.unread = convo.unread or old_convo.unread
        convo.unread_count += old_convo.unread_count
        if convo.assigned_user_id is None:
            convo.assigned_user_id = old_convo.assigned_user_id
        session.add(convo)
        # Organizers' notes follow the messages (the old conversation's would cascade away).
        await session.execute(
            update(ConversationNote)
            .where(col(ConversationNote.conversation_id) == old_convo.id)
            .values(conversation_id=convo.id)
        )
        await session.delete(old_convo)
    answered = select(PollAnswer.poll_id).where(col(PollAnswer.supporter_id) == new)
    await session.execute(
        delete(PollAnswer).where(
            col(PollAnswer.supporter_id) == old, col(PollAnswer.poll_id).in_(answered)
        )
    )
    invited = select(EventRsvp.occurrence_id).where(col(EventRsvp.supporter_id) == new)
    await session.execute(
        delete(EventRsvp).where(
            col(EventRsvp.supporter_id) == old, col(EventRsvp.occurrence_id).in_(invited)
        )
    )
    # Webhook deliveries not yet sent are about the target now (they render its rows).
    for table in (PollAnswer, EventRsvp, ConsentEvent, WebhookDelivery):
        await session.execute(
            update(table).where(col(table.supporter_id) == old).values(supporter_id=new)
        )
    await session.execute(delete(OnboardingState).where(col(OnboardingState.supporter_id) == old))
    # Its search terms were its address's (moved, and indexed for the target since).
    await session.execute(
        delete(SupporterSearchTerm).where(col(SupporterSearchTerm.supporter_id) == old)
    )
    target.last_inbound_at = _latest(target.last_inbound_at, source.last_inbound_at)
    target.last_outbound_at = _latest(target.last_outbound_at, source.last_outbound_at)
    if source.opted_out and not target.opted_out:
        # Its consent history moved above; the /start that links the chat is judged next.
        target.opted_out, target.opted_out_at = True, source.opted_out_at
    target.updated_at = now
    session.add(target)
    await session.delete(source)
    await session.flush()


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    return max((t for t in (a, b) if t is not None), default=None)
