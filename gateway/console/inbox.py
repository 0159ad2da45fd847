"""The inbox (GET /console/): one entry per conversation the user may see, newest activity
first, with the supporter's name as the link, unread ones marked and the last message's
preview. Reads the same query as GET /api/v1/conversations (team leads: their team only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from gateway.api.conversations import conversation_page
from gateway.api.scope import SessionDep
from gateway.console.security import CurrentUser
from gateway.console.templating import render
from storage.queries import last_messages

router = APIRouter()
PAGE_SIZE = 50
PREVIEW_CHARS = 120


def preview(body: str | None) -> str:
    """One line of at most PREVIEW_CHARS characters (escaped by the template)."""
    text = " ".join((body or "").split())
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


@router.get("/", include_in_schema=False)
async def inbox(
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    rows, next_cursor = await conversation_page(
        session, user.principal, limit=PAGE_SIZE, cursor=cursor
    )
    latest = await last_messages(session, [c.id for c, _ in rows if c.id is not None])
    entries = []
    for convo, name in rows:
        message = latest.get(convo.id or 0)
        entries.append(
            {
                "id": convo.id,
                "name": name,
                "unread": convo.unread,
                "unread_count": convo.unread_count,
                "at": convo.last_message_at or convo.created_at,
                "preview": preview(message.body) if message else "",
                "direction": message.direction if message else None,
                "channel": message.channel if message else None,
            }
        )
    return render(request, "inbox.html", {"entries": entries, "next_cursor": next_cursor})
