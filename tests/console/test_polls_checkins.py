"""Polls and check-ins in Chromium: a poll sent from the form, its tally chart against the
API, who answered; check-ins created and edited; "Due a one-on-one" and its Message action."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, expect
from sqlmodel import select

from storage.models import Checkin, Conversation, Poll, PollAnswer
from tests.console.conftest import LiveConsole
from tests.gateway.seed import add_member, count
from tests.routing.fake_adapter import FakeAdapter

pytestmark = pytest.mark.asyncio(loop_scope="session")
SignedIn = Callable[..., Awaitable[Page]]


async def test_a_poll_from_the_form_and_its_tally(
    console: LiveConsole, signed_in_page: SignedIn
) -> None:
    console.ctx.registry.add(FakeAdapter(channels=("sms",)))
    north = await console.make_team("North")
    ids = [
        await add_member(console.ctx, {"sms": f"+1415555020{i}"}, teams=[north], name=name)
        for i, name in enumerate(["Ada", "Bo", "<b>Cy</b>"])
    ]
    page = await signed_in_page()
    await page.goto(console.url("/console/polls/new"))
    await page.get_by_role("textbox", name="Question").fill("Which day works?")
    await page.get_by_role("textbox", name="Options").fill("Saturday\nSunday\n")
    await page.get_by_role("checkbox", name="North").check()
    await page.get_by_role("button", name="Send poll").click()
    await expect(page.get_by_role("heading", name="Poll")).to_be_visible()
    async with console.ctx.sessions() as session:
        poll = (await session.exec(select(Poll))).one()
    assert poll.options == ["Saturday", "Sunday"]

    async def answer(session: Any) -> None:
        for supporter, option in ((ids[0], 1), (ids[2], 1)):
            session.add(
                PollAnswer(
                    poll_id=poll.id,
                    supporter_id=supporter,
                    option_index=option,
                    channel="sms",
                    answered_at=console.clock(),
                )
            )

    await console.seed(answer)
    key = await console.admin_key()
    async with httpx.AsyncClient(
        base_url=console.url(""), headers={"Authorization": f"Bearer {key}"}
    ) as api:
        results = (await api.get(f"/api/v1/polls/{poll.id}")).json()
        listed = (await api.get("/api/v1/polls")).json()
    assert [p["id"] for p in listed["items"]] == [poll.id]

    await page.reload()
    chart = page.get_by_role("img", name="Answers by option")
    drawn = {
        await bar.get_attribute("data-label"): int(await bar.get_attribute("data-total") or -1)
        for bar in await chart.locator("g.bar").all()
    }
    assert drawn == {item["option"]: item["count"] for item in results["tally"]}
    assert drawn == {"Saturday": 0, "Sunday": 2}
    tally = page.get_by_role("table", name="Tally")
    await expect(tally.get_by_role("row", name="2) Sunday")).to_contain_text("2")
    await expect(tally.get_by_role("row", name="1) Saturday")).to_contain_text("0")
    answered = page.get_by_role("list", name="Answered (2)")
    await expect(answered).to_contain_text("Ada: Sunday")
    await expect(answered).to_contain_text("<b>Cy</b>: Sunday")  # as text, not markup
    await expect(page.get_by_role("list", name="Not answered (1)")).to_contain_text("Bo")

    await page.get_by_role("link", name="Polls", exact=True).click()
    await expect(page.get_by_role("link", name="Which day works?")).to_be_visible()


async def test_checkins_create_edit_and_who_is_due(
    console: LiveConsole, signed_in_page: SignedIn
) -> None:
    north = await console.make_team("North")
    long_ago = console.clock() - timedelta(days=40)
    quiet = await add_member(
        console.ctx, {"sms": "+14155550301"}, teams=[north], name="Quinn", last_inbound_at=long_ago
    )
    talked = await add_member(
        console.ctx, {"sms": "+14155550302"}, teams=[north], name="Tess", last_inbound_at=long_ago
    )

    async def conversation(session: Any) -> int:
        convo = Conversation(supporter_id=talked, created_at=console.clock())
        session.add(convo)
        await session.flush()
        return int(convo.id or 0)

    existing = await console.seed(conversation)
    page = await signed_in_page()

    await page.goto(console.url("/console/checkins/new"))
    await page.get_by_label("Team").select_option(label="North")
    await page.get_by_label("Weekday").select_option(label="Wednesday")
    await page.get_by_label("Time", exact=True).fill("18:30")
    await page.get_by_label("Timezone").fill("Not/AZone")
    await page.get_by_label("Prompt").fill("How was your week?")
    await page.get_by_role("button", name="Save check-in").click()
    await expect(page.get_by_role("alert")).to_contain_text("Timezone")
    await expect(page.get_by_label("Prompt")).to_have_value("How was your week?")  # kept
    assert await count(console.ctx, Checkin) == 0  # nothing half-done
    await page.get_by_label("Timezone").fill("Africa/Nairobi")
    await page.get_by_role("button", name="Save check-in").click()
    checkins = page.get_by_role("table", name="Check-ins")
    await expect(checkins).to_contain_text("Wednesday 18:30 (Africa/Nairobi)")

    await page.get_by_role("link", name="Edit the North check-in").click()
    await page.get_by_label("Time", exact=True).fill("09:15")
    await page.get_by_label("Timezone").fill("")
    await page.get_by_role("button", name="Save check-in").click()
    await expect(checkins).to_contain_text("Wednesday 09:15 (UTC)")
    async with console.ctx.sessions() as session:
        stored = (await session.exec(select(Checkin))).one()
    assert (stored.local_time, stored.timezone) == ("09:15", None)

    await page.get_by_role("link", name="Due a one-on-one").click()
    due = page.get_by_role("list", name="Supporters due a one-on-one")
    await expect(due.get_by_role("listitem")).to_have_count(2)
    link = due.get_by_role("link", name="Message Tess")
    assert await link.get_attribute("href") == f"/console/conversations/{existing}"
    await due.get_by_role("button", name="Message Quinn").click()
    await page.wait_for_url("**/console/conversations/*")
    async with console.ctx.sessions() as session:
        made = (
            await session.exec(select(Conversation).where(Conversation.supporter_id == quiet))
        ).one()
    assert page.url.endswith(f"/console/conversations/{made.id}")


async def test_a_team_lead_sees_and_manages_only_their_teams_checkins(
    console: LiveConsole, signed_in_page: SignedIn
) -> None:
    north, south = await console.make_team("North"), await console.make_team("South")
    long_ago = console.clock() - timedelta(days=40)
    await add_member(
        console.ctx, {"sms": "+14155550401"}, teams=[north], name="Nia", last_inbound_at=long_ago
    )
    await add_member(
        console.ctx, {"sms": "+14155550402"}, teams=[south], name="Sol", last_inbound_at=long_ago
    )
    page = await signed_in_page("team_lead", north)
    await page.goto(console.url("/console/checkins/due"))
    due = page.get_by_role("list", name="Supporters due a one-on-one")
    await expect(due.get_by_role("listitem")).to_have_count(1)
    await expect(due).to_contain_text("Nia")

    await page.goto(console.url("/console/checkins/new"))
    await expect(page.get_by_label("Team").locator("option")).to_have_count(1)
    csrf = await page.locator("input[name=csrf_token]").first.get_attribute("value")
    forced = await page.request.post(
        console.url("/console/checkins"),
        form={
            "csrf_token": csrf or "",
            "team": str(south),
            "weekday": "0",
            "local_time": "10:00",
            "timezone": "",
            "prompt": "hi",
            "inactive_days": "14",
            "nudge_text": "",
        },
    )
    assert forced.status == 403
    assert await count(console.ctx, Checkin) == 0
