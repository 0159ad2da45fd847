"""A supporter's profile and edit form in Chromium: consent history, escaping, edits
through the REST API's rules (a taken phone number keeps what was typed), team-lead scope."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest
from playwright.async_api import Page, expect
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import (
    ConsentEvent,
    Conversation,
    Poll,
    PollAnswer,
    Supporter,
    SupporterAddress,
    TeamMembership,
)
from tests.console.conftest import LiveConsole
from tests.console.people import add_supporter

pytestmark = pytest.mark.asyncio(loop_scope="session")
SignedIn = Callable[..., Awaitable[Page]]
HOSTILE_NAME = "<script>window.pwned = 1</script>Mallory"


async def test_profile_shows_consent_history_and_escapes_the_name(
    console: LiveConsole, signed_in_page: SignedIn
) -> None:
    now = console.clock()
    north = await console.make_team("North")

    async def seed(session: AsyncSession) -> int:
        sid = await add_supporter(
            session,
            HOSTILE_NAME,
            at=now - timedelta(days=30),
            phone="+14155550100",
            email="mallory@example.org",
            teams=[north],
            tags=["host"],
            last_inbound_at=now - timedelta(days=1),
        )
        session.add_all(
            [
                ConsentEvent(
                    supporter_id=sid,
                    action="opt_out",
                    channel="sms",
                    reason="<b>STOP</b>",
                    created_at=now - timedelta(days=5),
                ),
                ConsentEvent(supporter_id=sid, action="opt_in", channel="email", created_at=now),
            ]
        )
        poll = Poll(question="Can you host?", options=["Yes", "No"], created_at=now)
        session.add(poll)
        await session.flush()
        assert poll.id is not None
        session.add(PollAnswer(poll_id=poll.id, supporter_id=sid, option_index=0, answered_at=now))
        return sid

    sid = await console.seed(seed)
    page = await signed_in_page()
    await page.goto(console.url(f"/console/supporters/{sid}"))
    await expect(page.get_by_role("heading", level=1)).to_have_text(HOSTILE_NAME)
    assert await page.evaluate("window.pwned") is None
    assert await page.locator("main script").count() == 0
    history = page.get_by_role("table", name="Consent history, newest first").locator("tbody tr")
    await expect(history).to_have_count(2)
    await expect(history.nth(0)).to_contain_text("Opted in")
    await expect(history.nth(1)).to_contain_text("Opted out")
    await expect(history.nth(1)).to_contain_text("<b>STOP</b>")  # the reason, as text
    addresses = page.get_by_role("table", name="Addresses")
    await expect(addresses).to_contain_text("+14155550100")
    await expect(addresses).to_contain_text("mallory@example.org")
    await expect(page.get_by_text("Can you host?: Yes")).to_be_visible()
    await expect(page.locator("main")).to_contain_text("North")

    # No conversation yet: "Message" opens one and goes to its thread.
    await page.get_by_role("button", name="Message").click()
    await page.wait_for_url("**/console/conversations/*")

    async def conversation(session: AsyncSession) -> int | None:
        found = await session.exec(select(Conversation.id).where(Conversation.supporter_id == sid))
        return found.first()

    convo = await console.seed(conversation)
    assert convo is not None and page.url.endswith(f"/console/conversations/{convo}")
    await page.goto(console.url(f"/console/supporters/{sid}"))
    await expect(page.get_by_role("link", name="Message")).to_have_attribute(
        "href", f"/console/conversations/{convo}"
    )


async def test_edit_with_a_taken_phone_keeps_what_was_typed(
    console: LiveConsole, signed_in_page: SignedIn
) -> None:
    now = console.clock()
    south = await console.make_team("South")

    async def seed(session: AsyncSession) -> tuple[int, int]:
        ann = await add_supporter(session, "Ann", at=now, phone="+14155550111")
        await add_supporter(session, "Bo", at=now, phone="+14155550122")
        return ann, 0

    ann, _ = await console.seed(seed)
    page = await signed_in_page()
    await page.goto(console.url(f"/console/supporters/{ann}"))
    await page.get_by_role("link", name="Edit").click()
    await page.get_by_label("Name").fill("Ann Renamed")
    await page.get_by_label("Phone (SMS)").fill("(415) 555-0122")  # Bo's
    await page.get_by_label("Tags").fill("host, canvass")
    await page.get_by_role("button", name="Save").click()
    await expect(page.get_by_role("alert")).to_contain_text(
        "Phone number +14155550122 already belongs to another supporter."
    )
    await expect(page.get_by_label("Name")).to_have_value("Ann Renamed")
    await expect(page.get_by_label("Phone (SMS)")).to_have_value("(415) 555-0122")
    await expect(page.get_by_label("Tags")).to_have_value("host, canvass")

    async def stored(session: AsyncSession) -> tuple[str, list[str]]:
        row = await session.get(Supporter, ann)
        assert row is not None
        phones = await session.exec(
            select(SupporterAddress.address).where(SupporterAddress.supporter_id == ann)
        )
        return row.name, list(phones.all())

    assert await console.seed(stored) == ("Ann", ["+14155550111"])  # nothing half-done

    await page.get_by_label("Phone (SMS)").fill("415 555 0133")
    await page.get_by_label("Preferred channels").fill("email, sms")
    await page.get_by_label("Email").fill("ann@example.org")
    await page.get_by_label("Time zone").fill("America/Chicago")
    await page.get_by_label("South").check()
    await page.get_by_role("button", name="Save").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Ann Renamed")
    await expect(page.locator("main")).to_contain_text("email → sms")
    await expect(page.locator("main")).to_contain_text("America/Chicago")
    await expect(page.locator("main")).to_contain_text("canvass, host")
    name, addresses = await console.seed(stored)
    assert name == "Ann Renamed" and sorted(addresses) == ["+14155550133", "ann@example.org"]

    async def member(session: AsyncSession) -> bool:
        return await session.get(TeamMembership, (ann, south)) is not None

    assert await console.seed(member)


async def test_a_team_lead_cannot_open_another_teams_supporter(
    console: LiveConsole, signed_in_page: SignedIn
) -> None:
    now = console.clock()
    north, south = await console.make_team("North"), await console.make_team("South")

    async def seed(session: AsyncSession) -> tuple[int, int]:
        mine = await add_supporter(session, "Nora", at=now, teams=[north])
        theirs = await add_supporter(session, "Sam", at=now, teams=[south])
        return mine, theirs

    mine, theirs = await console.seed(seed)
    lead = await signed_in_page("team_lead", north)
    answer = await lead.goto(console.url(f"/console/supporters/{theirs}"))
    assert answer is not None and answer.status == 404
    await expect(lead.get_by_role("heading", name="Not Found")).to_be_visible()
    await expect(lead.get_by_text("Sam")).to_have_count(0)
    answer = await lead.goto(console.url(f"/console/supporters/{theirs}/edit"))
    assert answer is not None and answer.status == 404
    await lead.goto(console.url(f"/console/supporters/{mine}"))
    await expect(lead.get_by_role("heading", level=1)).to_have_text("Nora")
    await expect(lead.get_by_role("button", name="Add to team")).to_have_count(0)
    await lead.get_by_role("link", name="Edit").click()
    await expect(lead.get_by_role("group", name="Teams")).to_have_count(0)
