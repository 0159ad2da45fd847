"""The inbox page in Chromium: order, unread marks, escaping, team-lead scope."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest
from playwright.async_api import Page, expect
from sqlmodel.ext.asyncio.session import AsyncSession

from tests.console.conftest import LiveConsole, add_conversation

pytestmark = pytest.mark.asyncio(loop_scope="session")
SignedIn = Callable[..., Awaitable[Page]]
HOSTILE_NAME = "<script>window.pwned = 1</script>Mallory"
HOSTILE_BODY = '<script>window.pwned = 2</script><img src=x onerror="window.pwned = 3">hi'


async def test_inbox_lists_newest_first_and_escapes_what_supporters_wrote(
    console: LiveConsole, signed_in_page: SignedIn
) -> None:
    now = console.clock()

    async def seed(session: AsyncSession) -> None:
        await add_conversation(
            session, "Bea Old", "See you Tuesday", at=now - timedelta(days=2), unread=False
        )
        await add_conversation(session, HOSTILE_NAME, HOSTILE_BODY, at=now - timedelta(hours=1))

    await console.seed(seed)
    page = await signed_in_page()
    entries = page.get_by_role("list", name="Conversations").get_by_role("listitem")
    await expect(entries).to_have_count(2)
    first = entries.nth(0)
    await expect(first.get_by_role("link")).to_contain_text(HOSTILE_NAME)  # text, not markup
    await expect(first).to_contain_text("(1 unread)")
    await expect(first).to_contain_text(HOSTILE_BODY)
    await expect(entries.nth(1).get_by_role("link")).to_have_text("Bea Old")
    await expect(entries.nth(1)).not_to_contain_text("unread")
    assert await page.evaluate("window.pwned") is None
    assert await page.locator("main script, main img").count() == 0


async def test_a_team_lead_sees_only_their_team(
    console: LiveConsole, signed_in_page: SignedIn
) -> None:
    north, south = await console.make_team("North"), await console.make_team("South")
    now = console.clock()

    async def seed(session: AsyncSession) -> None:
        await add_conversation(session, "Nora North", "hello from the north", at=now, team_id=north)
        await add_conversation(session, "Sam South", "hello from the south", at=now, team_id=south)
        await add_conversation(session, "Nobody's", "no team", at=now)

    await console.seed(seed)
    lead = await signed_in_page("team_lead", north)
    entries = lead.get_by_role("list", name="Conversations").get_by_role("listitem")
    await expect(entries).to_have_count(1)
    await expect(entries.get_by_role("link")).to_have_text("Nora North (1 unread)")
    await expect(lead.get_by_text("Sam South")).to_have_count(0)

    coordinator = await signed_in_page("coordinator")
    everyone = coordinator.get_by_role("list", name="Conversations").get_by_role("listitem")
    await expect(everyone).to_have_count(3)
