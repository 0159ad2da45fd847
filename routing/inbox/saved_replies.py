"""Saved replies ("canned responses"): text organizers insert into a reply, with merge
variables (`{first_name}`, `{name}`, `{fields.X}`, `{first_name|friend}`) filled in from the
supporter (routing/texts/variables.py)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from routing.inbox.state import InboxError
from routing.texts.variables import TemplateError, check_text, parse
from storage.models import SavedReply

MAX_TITLE = 200
MAX_BODY = 10_000


def fill(body: str, supporter_name: str, fields: Mapping[str, str] | None = None) -> str:
    """`body` with its merge variables filled in for the supporter (a body that does not
    parse, saved before variables were checked, is left as typed)."""
    try:
        return parse(body).render(supporter_name, fields or {})
    except TemplateError:
        return body


async def _check_variables(session: AsyncSession, body: str) -> None:
    try:
        await check_text(session, body)
    except TemplateError as exc:
        raise InboxError("body", str(exc)) from exc


def _clean(title: str, body: str) -> tuple[str, str]:
    title, body = title.strip(), body.strip()
    if not title:
        raise InboxError("title", "a saved reply needs a title")
    if len(title) > MAX_TITLE:
        raise InboxError("title", f"a title is at most {MAX_TITLE} characters")
    if not body:
        raise InboxError("body", "a saved reply needs some text")
    if len(body) > MAX_BODY:
        raise InboxError("body", f"a saved reply is at most {MAX_BODY} characters")
    return title, body


async def _title_taken(session: AsyncSession, title: str, but: int | None = None) -> bool:
    stmt = select(SavedReply.id).where(SavedReply.title == title)
    if but is not None:
        stmt = stmt.where(SavedReply.id != but)
    return (await session.exec(stmt)).first() is not None


async def list_saved_replies(session: AsyncSession) -> list[SavedReply]:
    rows = await session.exec(select(SavedReply).order_by(col(SavedReply.title)))
    return list(rows.all())


async def create_saved_reply(
    session: AsyncSession, title: str, body: str, *, created_by: str, now: datetime
) -> SavedReply:
    """A new saved reply (no commit); titles are unique (InboxError otherwise)."""
    title, body = _clean(title, body)
    await _check_variables(session, body)
    if await _title_taken(session, title):
        raise InboxError("title", f"there is already a saved reply called {title!r}")
    reply = SavedReply(
        title=title, body=body, created_by=created_by, created_at=now, updated_at=now
    )
    session.add(reply)
    await session.flush()
    return reply


async def update_saved_reply(
    session: AsyncSession,
    reply: SavedReply,
    *,
    title: str | None,
    body: str | None,
    now: datetime,
) -> SavedReply:
    """Change a saved reply's title and/or text (no commit)."""
    new_title, new_body = _clean(
        reply.title if title is None else title, reply.body if body is None else body
    )
    await _check_variables(session, new_body)
    if await _title_taken(session, new_title, but=reply.id):
        raise InboxError("title", f"there is already a saved reply called {new_title!r}")
    reply.title, reply.body, reply.updated_at = new_title, new_body, now
    session.add(reply)
    await session.flush()
    return reply
