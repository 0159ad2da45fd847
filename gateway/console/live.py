"""Live updates (GET /console/live): a server-sent event stream telling an open inbox
(`?after=`) or thread (`?conversation=&after=`) that it should fetch itself again
(static/live.js does, through htmx). Events carry no data: the page re-fetches what its
user may see, so a team lead's scope holds. `after` is the newest message id the page
showed: anything newer at connect time is announced at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from gateway.api.ids import IdQuery
from gateway.api.scope import visible_conversation
from gateway.console.security import CurrentUser
from routing.inbox.feed import feed_for
from storage.models import MAX_ID

router = APIRouter()
HEARTBEAT = 20.0  # seconds: a comment line keeps proxies from closing an idle stream
ACTIVITY = "event: activity\ndata: changed\n\n"


@router.get("/live", include_in_schema=False)
async def live(
    request: Request,
    user: CurrentUser,
    conversation: IdQuery = None,
    after: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> StreamingResponse:
    ctx = request.app.state.ctx
    if conversation is not None:
        async with ctx.sessions() as session:
            await visible_conversation(session, user.principal, conversation)  # 404 outside
    feed = feed_for(ctx)
    listener = await feed.subscribe(conversation)
    stale = after > 0 and await feed.newest_message_id() > after

    async def stream() -> AsyncIterator[str]:
        try:
            yield "retry: 3000\n\n"
            if stale:
                yield ACTIVITY
            while True:
                try:
                    await asyncio.wait_for(listener.event.wait(), HEARTBEAT)
                except TimeoutError:
                    yield ": still here\n\n"
                    continue
                listener.event.clear()
                yield ACTIVITY
        finally:
            feed.unsubscribe(listener)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
