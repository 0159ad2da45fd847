"""The supporter list in Chromium: search, filters, bulk tagging, team-lead scope."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest
from playwright.async_api import Locator, Page, expect
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import SupporterTag
from tests.console.conftest import LiveConsole
from tests.console.people import add_supporter

pytestmark = pytest.mark.asyncio(loop_scope="session")
SignedIn = Callable[..., Awaitable[Page]]


def found(page: Page) -> Locator:
    return page.get_by_role("list", name="Supporters found").get_by_role("listitem")


async def search(page: Page, text: str) -> None:
    await page.get_by_role("textbox", name="Search").fill(text)
    await page.get_by_role("button", name="Filter").click()


async def test_search_by_name_phone_and_email_and_filter(
    console: LiveConsole, signed_in_page: SignedIn
) -> None:
    now = console.clock()
    north = await console.make_team("North")

    async def seed(session: AsyncSession) -> None:
        await add_supporter(
            session,
            "Ada Lovelace",
            at=now - timedelta(days=90),
            phone="+15555550101",
            teams=[north],
            tags=["host"],
            last_inbound_at=now - timedelta(days=2),
        )
        await add_supporter(
            session,
            "Grace Hopper",
            at=now - timedelta(days=90),
            email="grace@navy.example",
            last_inbound_at=now - timedelta(days=40),
        )
        await add_supporter(
            session, "Never Replied", at=now - timedelta(days=60), phone="+15555550199"
        )
        await add_supporter(session, "Newcomer", at=now - timedelta(days=3), phone="+15555550188")
        await add_supporter(
            session,
            "Olive Out",
            at=now - timedelta(days=9),
            email="olive@example.org",
            opted_out=True,
        )

    await console.seed(seed)
    page = await signed_in_page()
    await page.get_by_role("link", name="Supporters").click()
    await expect(page.get_by_role("heading", name="Supporters")).to_be_visible()
    await expect(found(page)).to_have_count(5)

    await search(page, "lovelace")
    await expect(found(page)).to_have_count(1)
    await expect(page.get_by_role("link", name="Ada Lovelace")).to_be_visible()
    await expect(found(page)).to_contain_text("North")
    await search(page, "(555) 555-0199")  # typed as people write it
    await expect(found(page)).to_have_count(1)
    await expect(page.get_by_role("link", name="Never Replied")).to_be_visible()
    await search(page, "grace@navy")
    await expect(found(page)).to_have_count(1)
    await expect(page.get_by_role("link", name="Grace Hopper")).to_be_visible()

    # Inactive 30 days: Grace (40 days silent) and Never Replied (joined 60 days ago);
    # not Ada (2 days), not the newcomer who never replied but joined 3 days ago.
    await page.get_by_role("textbox", name="Search").fill("")
    await page.get_by_label("Inactive for (days)").fill("30")
    await page.get_by_role("button", name="Filter").click()
    await expect(found(page)).to_have_count(2)
    await expect(page.get_by_role("link", name="Grace Hopper")).to_be_visible()
    await expect(page.get_by_role("link", name="Never Replied")).to_be_visible()
    await expect(page.get_by_label("Inactive for (days)")).to_have_value("30")

    await page.get_by_label("Inactive for (days)").fill("")
    await page.get_by_label("Opted out").select_option("yes")
    await page.get_by_role("button", name="Filter").click()
    await expect(found(page)).to_have_count(1)
    await expect(found(page)).to_contain_text("opted out")

    await page.goto(console.url(f"/console/supporters?team={north}&channel=sms&tag=host"))
    await expect(found(page)).to_have_count(1)
    await expect(page.get_by_label("Team", exact=True)).to_have_value(str(north))


async def test_tag_in_bulk(console: LiveConsole, signed_in_page: SignedIn) -> None:
    now = console.clock()

    async def seed(session: AsyncSession) -> list[int]:
        return [
            await add_supporter(session, name, at=now, tags=["old"] if name == "Cy" else [])
            for name in ("Ann", "Bo", "Cy")
        ]

    ann, bo, cy = await console.seed(seed)
    page = await signed_in_page()
    await page.goto(console.url("/console/supporters"))
    await page.get_by_label("Select Ann").check()
    await page.get_by_label("Select Cy").check()
    await page.get_by_label("Tag name").fill("phonebank")
    await page.get_by_role("button", name="Add tag").click()
    await expect(page.get_by_role("status")).to_have_text("Tag changed for 2 supporters.")
    await page.get_by_label("Select Cy").check()
    await page.get_by_label("Tag name").fill("old")
    await page.get_by_role("button", name="Remove tag").click()
    await expect(page.get_by_role("status")).to_have_text("Tag changed for 1 supporter.")

    async def tags(session: AsyncSession) -> set[tuple[int, str]]:
        rows = await session.exec(select(SupporterTag))
        return {(t.supporter_id, t.tag) for t in rows.all()}

    assert await console.seed(tags) == {(ann, "phonebank"), (cy, "phonebank")}
    assert bo not in {sid for sid, _ in await console.seed(tags)}


async def test_a_team_lead_lists_only_their_team(
    console: LiveConsole, signed_in_page: SignedIn
) -> None:
    now = console.clock()
    north, south = await console.make_team("North"), await console.make_team("South")

    async def seed(session: AsyncSession) -> None:
        await add_supporter(session, "Nora North", at=now, teams=[north])
        await add_supporter(session, "Sam South", at=now, teams=[south])

    await console.seed(seed)
    lead = await signed_in_page("team_lead", north)
    await lead.goto(console.url(f"/console/supporters?team={south}"))
    await expect(found(lead)).to_have_count(1)
    await expect(lead.get_by_role("link", name="Nora North")).to_be_visible()
    await expect(lead.get_by_text("Sam South")).to_have_count(0)
    options = lead.get_by_label("Team", exact=True).locator("option")
    await expect(options).to_have_text(["Any team", "North"])
