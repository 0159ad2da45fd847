"""Shared set-up for thread tests: a live console with Twilio SMS configured over the
in-repo Twilio fake, a supporter with an SMS address and an unread message, and signing
in as a new user of a role."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime

import httpx
from playwright.async_api import BrowserContext, Page, expect
from sqlmodel.ext.asyncio.session import AsyncSession

from channels.twilio.fake import FakeTwilio
from storage.models import Conversation, Message, Supporter, SupporterAddress, TeamMembership
from tests.channels.twilio_case import (
    ACCOUNT_SID,
    API_BASE,
    AUTH_TOKEN,
    SETTINGS,
    signed_post,
    sms_form,
)
from tests.conftest import FakeClock
from tests.console.conftest import LiveConsole, live_console, sign_in

NewContext = Callable[[], Awaitable[BrowserContext]]


async def twilio_console(
    database_url: str, clock: FakeClock
) -> AsyncIterator[tuple[LiveConsole, FakeTwilio]]:
    fake = FakeTwilio(ACCOUNT_SID, AUTH_TOKEN, api_base=API_BASE)
    client = httpx.AsyncClient(transport=httpx.MockTransport(fake))
    async with live_console(
        database_url, clock, http_client=client, run_background=True, **SETTINGS
    ) as live:
        yield live, fake


async def add_supporter(
    session: AsyncSession,
    name: str,
    body: str,
    *,
    at: datetime,
    phone: str = "+14155550101",
    team_id: int | None = None,
    opted_out: bool = False,
) -> int:
    """A supporter with an SMS address and one unread inbound message; the conversation id."""
    supporter = Supporter(
        name=name, created_at=at, updated_at=at, last_inbound_at=at, opted_out=opted_out
    )
    session.add(supporter)
    await session.flush()
    assert supporter.id is not None
    session.add(SupporterAddress(supporter_id=supporter.id, channel="sms", address=phone))
    if team_id is not None:
        session.add(TeamMembership(supporter_id=supporter.id, team_id=team_id))
    convo = Conversation(
        supporter_id=supporter.id, last_message_at=at, unread=True, unread_count=1, created_at=at
    )
    session.add(convo)
    await session.flush()
    assert convo.id is not None
    session.add(
        Message(
            conversation_id=convo.id,
            supporter_id=supporter.id,
            direction="inbound",
            kind="inbound",
            channel="sms",
            address=phone,
            body=body,
            status="received",
            created_at=at,
            updated_at=at,
        )
    )
    return convo.id


async def open_as(
    live: LiveConsole,
    new_context: NewContext,
    role: str = "coordinator",
    team: int | None = None,
    name: str | None = None,
) -> Page:
    """A new user of `role`, signed in through the form; the page shows the inbox."""
    user_id, email = await live.make_user(role, team, name=name)
    page = await (await new_context()).new_page()
    await sign_in(page, live, email)
    await expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
    page.user_id = user_id  # type: ignore[attr-defined]
    return page


async def post_inbound(live: LiveConsole, sid: str, sender: str, body: str) -> None:
    """A signed Twilio webhook to the live server (signed over its public URL)."""
    request = signed_post(
        sms_form(sid, sender, body), signed_url=live.ctx.settings.public_url + "/webhooks/twilio"
    )
    async with httpx.AsyncClient(base_url=live.base_url) as client:
        response = await client.post(request.path, headers=request.headers, content=request.content)
    assert response.status_code == 200, response.text
