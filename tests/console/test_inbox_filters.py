"""Inbox filters in Chromium: a GET form (bookmarkable), unread, assigned to me, team,
channel, status and search by name or phone; each entry shows channel and assignee."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest
from playwright.async_api import Page, expect
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Conversation, SupporterAddress
from tests.console.conftest import LiveConsole, add_conversation

pytestmark = pytest.mark.asyncio(loop_scope="session")
SignedIn = Callable[..., Awaitable[Page]]


async def test_filters_narrow_the_inbox_and_are_links(
    console: LiveConsole, signed_in_page: SignedIn
) -> None:
    north = await console.make_team("North")
    now = console.clock()
    page = await signed_in_page(name="Olu Organizer")
    me = page.user_id  # type: ignore[attr-defined]

    async def seed(session: AsyncSession) -> None:
        ada = await add_conversation(session, "Ada Unread", "hi", at=now, team_id=north)
        bo = await add_conversation(
            session, "Bo Read", "ok", at=now - timedelta(hours=1), unread=False
        )
        cy = await add_conversation(
            session, "Cy Resolved", "thanks", at=now - timedelta(hours=2), unread=False
        )
        for convo_id, channel, address in (
            (ada, "sms", "+14155550101"),
            (bo, "email", "bo@example.org"),
            (cy, "sms", "+14155550103"),
        ):
            convo = await session.get(Conversation, convo_id)
            assert convo is not None
            session.add(
                SupporterAddress(supporter_id=convo.supporter_id, channel=channel, address=address)
            )
            if convo_id == bo:
                convo.assigned_user_id = me
            if convo_id == cy:
                convo.status = "resolved"

    await console.seed(seed)
    await page.reload()
    entries = page.get_by_role("list", name="Conversations").get_by_role("listitem")
    await expect(entries).to_have_count(2)  # open ones: the resolved one is filtered out
    await expect(entries.nth(1)).to_contain_text("Assigned to Olu Organizer")
    await expect(entries.nth(0)).to_contain_text("Unassigned")

    await page.get_by_label("Unread").check()
    await page.get_by_role("button", name="Filter").click()
    await expect(entries).to_have_count(1)
    await expect(entries.get_by_role("link")).to_contain_text("Ada Unread")
    assert "unread=1" in page.url  # the filtered inbox is a link to bookmark

    await page.goto(console.url("/console/?mine=1"))
    await expect(page.get_by_label("Assigned to me")).to_be_checked()
    await expect(entries).to_have_count(1)
    await expect(entries.get_by_role("link")).to_have_text("Bo Read")

    await page.goto(console.url("/console/"))
    await page.get_by_label("Team").select_option(label="North")
    await page.get_by_role("button", name="Filter").click()
    await expect(entries).to_have_count(1)
    await expect(entries.get_by_role("link")).to_contain_text("Ada Unread")

    await page.goto(console.url("/console/?channel=email"))
    await expect(entries.get_by_role("link")).to_have_text("Bo Read")

    await page.goto(console.url("/console/"))
    await page.get_by_label("Status").select_option("resolved")
    await page.get_by_role("button", name="Filter").click()
    await expect(entries.get_by_role("link")).to_have_text("Cy Resolved")
    await expect(entries).to_contain_text("Resolved")

    await page.get_by_label("Status").select_option("all")
    await page.get_by_role("searchbox", name="Search").fill("415 555 0103")
    await page.get_by_role("button", name="Filter").click()
    await expect(entries).to_have_count(1)
    await expect(entries.get_by_role("link")).to_have_text("Cy Resolved")
    await page.get_by_role("searchbox", name="Search").fill("ada")
    await page.get_by_role("button", name="Filter").click()
    await expect(entries.get_by_role("link")).to_contain_text("Ada Unread")
    await page.get_by_role("searchbox", name="Search").fill("nobody at all")
    await page.get_by_role("button", name="Filter").click()
    await expect(page.get_by_text("No conversations match these filters.")).to_be_visible()


async def test_inbox_pages_keep_their_filters(
    console: LiveConsole, signed_in_page: SignedIn
) -> None:
    now = console.clock()

    async def seed(session: AsyncSession) -> None:
        for i in range(52):
            await add_conversation(session, f"P{i:02}", "x", at=now - timedelta(minutes=i))

    await console.seed(seed)
    page = await signed_in_page()
    await page.goto(console.url("/console/?unread=1"))
    entries = page.get_by_role("list", name="Conversations").get_by_role("listitem")
    await expect(entries).to_have_count(50)
    await page.get_by_role("link", name="Older conversations").click()
    await expect(entries).to_have_count(2)
    await expect(entries.nth(1).get_by_role("link")).to_contain_text("P51")
    assert "unread=1" in page.url
