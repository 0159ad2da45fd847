"""Private notes between organizers on a conversation. They are never sent: they live in
their own table, which nothing outbound reads."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from routing.inbox.state import InboxError
from storage.models import ConversationNote

MAX_NOTE = 10_000


async def add_note(
    session: AsyncSession,
    conversation_id: int,
    body: str,
    *,
    author: str,
    author_user_id: int | None,
    now: datetime,
) -> ConversationNote:
    """Store a note (no commit); a blank or over-long body → InboxError."""
    text = body.strip()
    if not text:
        raise InboxError("body", "a note needs some text")
    if len(text) > MAX_NOTE:
        raise InboxError("body", f"a note is at most {MAX_NOTE} characters")
    note = ConversationNote(
        conversation_id=conversation_id,
        author=author,
        author_user_id=author_user_id,
        body=text,
        created_at=now,
    )
    session.add(note)
    await session.flush()
    return note


async def notes_of(session: AsyncSession, conversation_id: int) -> list[ConversationNote]:
    """The conversation's notes, oldest first."""
    rows = await session.exec(
        select(ConversationNote)
        .where(ConversationNote.conversation_id == conversation_id)
        .order_by(col(ConversationNote.id))
    )
    return list(rows.all())
