"""Everything the thread page shows, gathered in one place (gateway/console/thread.py
renders it): the supporter and consent, messages, the router's pick for a reply and why,
notes, assignable users and saved replies."""

from __future__ import annotations

from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from channels.sms_segments import count_segments
from gateway.api.scope import lead_team
from gateway.console.sessions import ConsoleUser
from gateway.console.thread_view import message_views
from gateway.context import GatewayContext
from routing.inbox.feed import newest_message_id
from routing.inbox.notes import notes_of
from routing.inbox.saved_replies import list_saved_replies
from routing.inbox.state import assignable_users, effective_status
from routing.outbound.one_on_one import explain
from routing.outbound.queue import addresses_of
from storage.models import ConsentEvent, Conversation, Message, Supporter, User

THREAD_PAGE = 50


def segments_text(text: str) -> str:
    """ "12 characters · 1 SMS segment (GSM-7)", as channels/sms_segments.py counts."""
    count = count_segments(text)
    plural = "" if count.segments == 1 else "s"
    chars = len(text)
    return (
        f"{chars} character{'' if chars == 1 else 's'} · "
        f"{count.segments} SMS segment{plural} ({count.encoding})"
    )


def user_label(user: User) -> str:
    return user.name or user.email


async def author_names(session: AsyncSession, labels: set[str]) -> dict[str, str]:
    """ "user:3" → the user's name or email (API keys stay "API key 1")."""
    ids = {int(x[5:]) for x in labels if x.startswith("user:") and x[5:].isdigit()}
    names = {x: f"API key {x[4:]}" for x in labels if x.startswith("key:")}
    if ids:
        for user in (await session.exec(select(User).where(col(User.id).in_(ids)))).all():
            names[f"user:{user.id}"] = user_label(user)
    return names


async def page_of_messages(
    session: AsyncSession, conversation_id: int, before: int | None
) -> tuple[list[Message], int | None]:
    """The last THREAD_PAGE messages (before message id `before`), oldest first, and the
    `before` of the earlier page (None: this is the start)."""
    stmt = select(Message).where(Message.conversation_id == conversation_id)
    if before is not None:
        stmt = stmt.where(col(Message.id) < before)
    rows = list(
        (await session.exec(stmt.order_by(col(Message.id).desc()).limit(THREAD_PAGE + 1))).all()
    )
    earlier = rows[THREAD_PAGE - 1].id if len(rows) > THREAD_PAGE else None
    return list(reversed(rows[:THREAD_PAGE])), earlier


async def thread_data(
    session: AsyncSession,
    ctx: GatewayContext,
    user: ConsoleUser,
    convo: Conversation,
    *,
    before: int | None = None,
) -> dict[str, Any]:
    assert convo.id is not None
    now = ctx.clock()
    supporter = await session.get(Supporter, convo.supporter_id)
    assert supporter is not None and supporter.id is not None
    messages, earlier = await page_of_messages(session, convo.id, before)
    views = await message_views(session, messages, supporter, ctx.settings, now)
    notes = await notes_of(session, convo.id)
    names = await author_names(
        session, {n.author for n in notes} | {v.sent_by for v in views if v.sent_by}
    )
    addresses = await addresses_of(session, supporter.id)
    consent = None
    if supporter.opted_out:
        consent = (
            await session.exec(
                select(ConsentEvent)
                .where(ConsentEvent.supporter_id == supporter.id, ConsentEvent.action == "opt_out")
                .order_by(col(ConsentEvent.id).desc())
            )
        ).first()
    users = await assignable_users(session, lead_team(user.principal))
    assignee = await session.get(User, convo.assigned_user_id) if convo.assigned_user_id else None
    return {
        "convo": convo,
        "supporter": supporter,
        "addresses": addresses,
        "status": effective_status(convo, now),
        "messages": views,
        "earlier_url": f"/console/conversations/{convo.id}?before={earlier}" if earlier else None,
        "is_latest": before is None,
        "newest": await newest_message_id(session),
        "notes": notes,
        "names": names,
        "route": explain(ctx, supporter, addresses, now),
        "consent": consent,
        "users": users,
        "assignee": assignee,
        "saved_replies": await list_saved_replies(session),
        "timezone": ctx.settings.default_timezone,
        "user_label": user_label,
    }
