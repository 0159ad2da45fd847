"""The thread in Chromium: read and answer a supporter over the channel shown (the reply
reaches the Twilio fake), the live segment count, live updates from a signed webhook,
escaping, team-lead scope, opted-out supporters and CSRF refusal on Send."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from playwright.async_api import expect
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from channels.twilio.fake import FakeTwilio
from gateway.console.thread_data import segments_text
from storage.models import Conversation, Message
from tests.conftest import FakeClock
from tests.console.conftest import LiveConsole
from tests.console.thread_case import (
    NewContext,
    add_supporter,
    open_as,
    post_inbound,
    twilio_console,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")
HOSTILE_NAME = "<script>window.pwned = 1</script>Mallory"
HOSTILE_BODY = '<script>window.pwned = 2</script><img src=x onerror="window.pwned = 3">hi'


@pytest_asyncio.fixture(loop_scope="session")
async def sms(database_url: str, clock: FakeClock) -> AsyncIterator[tuple[LiveConsole, FakeTwilio]]:
    async for pair in twilio_console(database_url, clock):
        yield pair


async def outbound(live: LiveConsole, convo: int) -> list[Message]:
    async def read(session: AsyncSession) -> list[Message]:
        rows = await session.exec(
            select(Message)
            .where(Message.conversation_id == convo, Message.direction == "outbound")
            .order_by(col(Message.id))
        )
        return list(rows.all())

    result: list[Message] = await live.seed(read)
    return result


async def test_read_and_answer_a_supporter(
    sms: tuple[LiveConsole, FakeTwilio], new_context: NewContext
) -> None:
    live, fake = sms
    now = live.clock()

    async def seed(session: AsyncSession) -> int:
        return await add_supporter(session, "Amina Diallo", "Can I help on Saturday?", at=now)

    convo = await live.seed(seed)
    page = await open_as(live, new_context, name="Olu")
    await page.get_by_role("link", name="Amina Diallo").click()
    await expect(page.get_by_role("heading", name="Amina Diallo")).to_be_visible()
    thread = page.get_by_role("list", name="Messages")
    await expect(thread.get_by_role("listitem")).to_have_count(1)
    await expect(thread).to_contain_text("Can I help on Saturday?")
    await expect(thread).to_contain_text("sms")
    opened = await live.seed(lambda s: s.get(Conversation, convo))
    assert opened.unread is False and opened.unread_count == 0  # opening marks it read
    # The channel the router will use, and why, before sending.
    await expect(page.locator("#route")).to_contain_text("Will send over sms")
    await expect(page.locator("#route")).to_contain_text("first usable channel")
    await expect(page.locator("#route")).to_contain_text("has not opted out")

    reply = page.get_by_role("textbox", name="Reply")
    for text in ("Thanks! See you Saturday", "Braces {} cost two septets " * 6, "On my way 🚲"):
        await reply.fill(text)
        await expect(page.locator("#segments")).to_have_text(segments_text(text))
    await reply.fill("Thanks Amina, see you at 10 €")
    await page.get_by_role("button", name="Send").click()
    await expect(thread.get_by_role("listitem")).to_have_count(2)
    last = thread.get_by_role("listitem").nth(1)
    await expect(last).to_contain_text("Thanks Amina, see you at 10 €")
    await expect(last).to_contain_text("by Olu")
    [sent] = await outbound(live, convo)
    assert sent.channel == "sms" and sent.kind == "one_on_one"
    assert sent.sent_by == f"user:{page.user_id}"  # type: ignore[attr-defined]
    # The dispatcher sends it; the thread shows that live (the feed sees the status).
    await expect(last).to_contain_text("Sent", timeout=5000)
    delivered = fake.sent
    assert delivered[0].get("Body") == "Thanks Amina, see you at 10 €"
    assert delivered[0].get("To") == "+14155550101"


async def test_new_inbound_appears_live_in_thread_and_inbox(
    sms: tuple[LiveConsole, FakeTwilio], new_context: NewContext
) -> None:
    live, _ = sms
    now = live.clock()

    async def seed(session: AsyncSession) -> int:
        return await add_supporter(session, "Bea Live", "first message", at=now)

    convo = await live.seed(seed)
    inbox = await open_as(live, new_context)
    thread = await inbox.context.new_page()
    await thread.goto(live.url(f"/console/conversations/{convo}"))
    await expect(thread.get_by_role("list", name="Messages")).to_contain_text("first message")
    await post_inbound(live, "SM" + "a" * 32, "+14155550101", "Running late, sorry")
    # Without reloading: the thread and the inbox (5 s: the contract's bound).
    await expect(thread.get_by_role("list", name="Messages")).to_contain_text(
        "Running late, sorry", timeout=5000
    )
    await expect(inbox.get_by_role("list", name="Conversations")).to_contain_text(
        "Running late, sorry", timeout=5000
    )


async def test_escaping_scope_opt_out_and_csrf(
    sms: tuple[LiveConsole, FakeTwilio], new_context: NewContext
) -> None:
    live, fake = sms
    now = live.clock()
    north, south = await live.make_team("North"), await live.make_team("South")

    async def seed(session: AsyncSession) -> tuple[int, int, int]:
        hostile = await add_supporter(session, HOSTILE_NAME, HOSTILE_BODY, at=now, team_id=north)
        other = await add_supporter(
            session, "Sam South", "hi", at=now, phone="+14155550102", team_id=south
        )
        gone = await add_supporter(
            session, "Olga Out", "STOP", at=now, phone="+14155550103", team_id=north, opted_out=True
        )
        return hostile, other, gone

    hostile, other, gone = await live.seed(seed)
    lead = await open_as(live, new_context, "team_lead", north)
    await lead.goto(live.url(f"/console/conversations/{hostile}"))
    await expect(lead.get_by_role("heading", level=1)).to_have_text(HOSTILE_NAME)
    await expect(lead.get_by_role("list", name="Messages")).to_contain_text(HOSTILE_BODY)
    await lead.get_by_role("textbox", name="Note").fill(HOSTILE_BODY)
    await lead.get_by_role("button", name="Add note").click()
    await expect(lead.get_by_role("list", name="Private notes")).to_contain_text(HOSTILE_BODY)
    assert await lead.evaluate("window.pwned") is None
    assert await lead.locator("main img").count() == 0

    # Another team's thread (and its live stream) is not found for a team lead.
    response = await lead.goto(live.url(f"/console/conversations/{other}"))
    assert response is not None and response.status == 404
    await expect(lead.get_by_role("heading", level=1)).not_to_have_text("Sam South")
    stream = await lead.request.get(live.url(f"/console/live?conversation={other}"))
    assert stream.status == 404

    # Opted out: no Send, and why.
    await lead.goto(live.url(f"/console/conversations/{gone}"))
    await expect(lead.get_by_text("Olga Out opted out")).to_be_visible()
    await expect(lead.get_by_role("button", name="Send")).to_have_count(0)

    # A Send without the right CSRF token is refused and queues nothing.
    await lead.goto(live.url(f"/console/conversations/{hostile}"))
    await lead.get_by_role("textbox", name="Reply").fill("forged?")
    await lead.locator("form[action$='/reply'] input[name=csrf_token]").evaluate(
        "input => { input.value = 'not-the-token' }"
    )
    await lead.get_by_role("button", name="Send").click()
    await expect(lead.get_by_role("heading", level=1)).to_contain_text("Forbidden")
    assert await outbound(live, hostile) == []
    assert fake.sent == []
