"""The teams page in Chromium: members, stats and leads; create, rename, delete (refused
while an announcement to the team is going out); team leads do not get the page."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest
from playwright.async_api import Page, expect
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Announcement, Team, TeamMembership
from tests.console.conftest import LiveConsole
from tests.console.people import add_supporter

pytestmark = pytest.mark.asyncio(loop_scope="session")
SignedIn = Callable[..., Awaitable[Page]]


async def test_create_rename_and_delete_refused_while_an_announcement_is_pending(
    console: LiveConsole, signed_in_page: SignedIn
) -> None:
    now = console.clock()
    north = await console.make_team("North")
    await console.make_user("team_lead", north, name="Lena Lead")

    async def seed(session: AsyncSession) -> int:
        await add_supporter(
            session,
            "Ann",
            at=now,
            phone="+14155550101",
            teams=[north],
            last_inbound_at=now - timedelta(days=3),
        )
        await add_supporter(session, "Bo", at=now, email="bo@example.org", teams=[north])
        pending = Announcement(body="Rally at noon", audience={"teams": [north]}, created_at=now)
        session.add(pending)
        await session.flush()
        assert pending.id is not None
        return pending.id

    pending = await console.seed(seed)
    page = await signed_in_page("admin")
    await page.get_by_role("link", name="Teams").click()
    await expect(page.get_by_role("heading", name="Teams", level=1)).to_be_visible()
    team = (
        page.get_by_role("list", name="Teams")
        .get_by_role("listitem")
        .filter(has=page.get_by_role("heading", name="North"))
    )
    await expect(team).to_contain_text("Members2")
    await expect(team).to_contain_text("1 in 7 days")
    await expect(team).to_contain_text("email 1, sms 1")
    await expect(team).to_contain_text("Lena Lead")

    await page.get_by_label("Team name").fill("South <b>side</b>")
    await page.get_by_role("button", name="Create team").click()
    await expect(page.get_by_role("heading", name="South <b>side</b>")).to_be_visible()
    await page.get_by_label("Team name").fill("12345")
    await page.get_by_role("button", name="Create team").click()
    await expect(page.get_by_role("alert")).to_contain_text("cannot be only digits")
    await expect(page.get_by_label("Team name")).to_have_value("12345")

    await page.get_by_label("New name for North").fill("North Side")
    await page.get_by_role("button", name="Rename").first.click()
    await expect(page.get_by_role("heading", name="North Side")).to_be_visible()

    await page.get_by_role("link", name="Delete North Side").click()
    await expect(page.get_by_role("heading", name="Delete North Side?")).to_be_visible()
    await page.get_by_role("button", name="Delete team").click()
    await expect(page.get_by_role("alert")).to_contain_text(
        f"still going out: {pending}; cancel them or wait"
    )

    async def state(session: AsyncSession) -> tuple[list[str], int]:
        names = (await session.exec(select(Team.name).order_by(Team.name))).all()
        members = (await session.exec(select(TeamMembership))).all()
        return list(names), len(members)

    assert await console.seed(state) == (["North Side", "South <b>side</b>"], 2)

    async def sent(session: AsyncSession) -> None:
        row = await session.get(Announcement, pending)
        assert row is not None
        row.state = "done"
        session.add(row)

    await console.seed(sent)
    await page.goto(console.url(f"/console/teams/{north}/delete"))
    await page.get_by_role("button", name="Delete team").click()
    await expect(page.get_by_role("heading", name="South <b>side</b>")).to_be_visible()
    await expect(page.get_by_role("heading", name="North Side")).to_have_count(0)
    assert await console.seed(state) == (["South <b>side</b>"], 0)


async def test_team_leads_do_not_get_the_teams_page(
    console: LiveConsole, signed_in_page: SignedIn
) -> None:
    north = await console.make_team("North")
    lead = await signed_in_page("team_lead", north)
    await expect(lead.get_by_role("link", name="Supporters")).to_be_visible()
    await expect(lead.get_by_role("link", name="Teams")).to_have_count(0)
    answer = await lead.goto(console.url("/console/teams"))
    assert answer is not None and answer.status == 403
    await expect(lead.get_by_role("heading", name="Forbidden")).to_be_visible()
