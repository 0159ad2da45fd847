"""Thread actions in Chromium: resolve / reopen / snooze, assign, private notes, saved
replies inserted with {first_name}, and the saved replies page (a team lead changes only
their own). The database shows each change; nothing is sent."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, timedelta

import pytest
from playwright.async_api import Page, expect
from sqlmodel import func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Conversation, ConversationNote, Message, SavedReply
from tests.console.conftest import LiveConsole, add_conversation

pytestmark = pytest.mark.asyncio(loop_scope="session")
SignedIn = Callable[..., Awaitable[Page]]


async def conversation(console: LiveConsole, convo_id: int) -> Conversation:
    row: Conversation = await console.seed(lambda s: s.get(Conversation, convo_id))
    return row


async def test_resolve_reopen_snooze_assign_note_and_saved_reply(
    console: LiveConsole, signed_in_page: SignedIn
) -> None:
    now = console.clock()
    colleague, _ = await console.make_user("coordinator", name="Chidi Colleague")

    async def seed(session: AsyncSession) -> int:
        session.add(
            SavedReply(
                title="Welcome",
                body="Hi {first_name}, welcome aboard!",
                created_at=now,
                updated_at=now,
            )
        )
        return await add_conversation(session, "Amina Diallo", "hello", at=now)

    convo = await console.seed(seed)
    page = await signed_in_page()
    await page.goto(console.url(f"/console/conversations/{convo}"))

    await page.get_by_role("button", name="Resolve").click()
    await expect(page.get_by_role("button", name="Reopen")).to_be_visible()
    assert (await conversation(console, convo)).status == "resolved"
    await page.get_by_role("button", name="Reopen").click()
    await expect(page.get_by_role("button", name="Resolve")).to_be_visible()
    assert (await conversation(console, convo)).status == "open"

    until = (now + timedelta(days=1)).replace(second=0, microsecond=0)
    await page.get_by_label("Snooze until").fill(until.strftime("%Y-%m-%dT%H:%M"))
    await page.get_by_role("button", name="Snooze").click()
    await expect(page.get_by_text("Status: Snoozed")).to_be_visible()
    snoozed = await conversation(console, convo)
    assert snoozed.status == "snoozed"
    assert snoozed.snoozed_until is not None
    assert snoozed.snoozed_until.astimezone(UTC) == until  # default timezone UTC
    # A time in the past: the form says so and nothing changes.
    await page.get_by_label("Snooze until").fill(
        (now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    )
    await page.get_by_role("button", name="Snooze").click()
    await expect(page.get_by_role("alert")).to_contain_text("future")
    assert (await conversation(console, convo)).snoozed_until == snoozed.snoozed_until

    await page.get_by_label("Assign").select_option(label="Chidi Colleague")
    await page.get_by_role("button", name="Assign").click()
    await expect(page.get_by_text("Assigned to Chidi Colleague")).to_be_visible()
    assert (await conversation(console, convo)).assigned_user_id == colleague

    await page.get_by_role("textbox", name="Note").fill("Prefers evenings; ask about Saturday")
    await page.get_by_role("button", name="Add note").click()
    notes = page.get_by_role("list", name="Private notes")
    await expect(notes).to_contain_text("Prefers evenings; ask about Saturday")
    await expect(notes).to_contain_text("Private note")

    async def counts(session: AsyncSession) -> tuple[int, int]:
        n = (await session.exec(select(func.count()).select_from(ConversationNote))).one()
        m = (await session.exec(select(func.count()).select_from(Message))).one()
        return int(n), int(m)

    assert await console.seed(counts) == (1, 1)  # a note, and no message sent

    await page.get_by_label("Saved reply").select_option(label="Welcome")
    await page.get_by_role("button", name="Insert").click()
    await expect(page.get_by_role("textbox", name="Reply")).to_have_value(
        "Hi Amina, welcome aboard!"
    )


async def test_saved_replies_page(console: LiveConsole, signed_in_page: SignedIn) -> None:
    north = await console.make_team("North")
    page = await signed_in_page()
    await page.get_by_role("link", name="Saved replies").click()
    await expect(page.get_by_role("heading", name="Saved replies")).to_be_visible()
    await page.get_by_label("Title", exact=True).fill("Thanks")
    await page.get_by_label("Text", exact=True).fill("Thank you {first_name}!")
    await page.get_by_role("button", name="Add saved reply").click()
    await expect(page.get_by_role("status")).to_have_text("Saved reply added.")
    # A second with the same title: refused, what was typed kept.
    await page.get_by_label("Title", exact=True).fill("Thanks")
    await page.get_by_label("Text", exact=True).fill("again")
    await page.get_by_role("button", name="Add saved reply").click()
    await expect(page.get_by_role("alert")).to_contain_text("already")
    await expect(page.get_by_label("Text", exact=True)).to_have_value("again")
    await page.get_by_label("Text of Thanks").fill("Many thanks, {first_name}!")
    await page.get_by_role("button", name="Save Thanks").click()
    await expect(page.get_by_role("status")).to_have_text("Saved reply changed.")

    lead = await signed_in_page("team_lead", north)
    await lead.goto(console.url("/console/saved-replies"))
    listed = lead.get_by_role("list", name="Saved replies")
    await expect(listed).to_contain_text("Many thanks, {first_name}!")
    await expect(lead.get_by_role("button", name="Delete Thanks")).to_have_count(0)

    await page.get_by_role("button", name="Delete Thanks").click()
    await expect(page.get_by_role("status")).to_have_text("Saved reply deleted.")
    rows = await console.seed(lambda s: s.exec(select(SavedReply)))
    assert list(rows.all()) == []
