"""Events in Chromium (desktop and phone): created from the form with its audience (bad
input kept and named), the event page's RSVP counts by channel against the API, edit and
cancel, and the attendance checklist ticked on the page."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, expect
from sqlmodel import col, select

from storage.models import Event, EventOccurrence, EventRsvp, Message
from tests.console.conftest import LiveConsole
from tests.gateway.seed import add_member
from tests.routing.fake_adapter import FakeAdapter

pytestmark = pytest.mark.asyncio(loop_scope="session")
SignedIn = Callable[..., Awaitable[Page]]


async def answer(console: LiveConsole, event_id: int, answers: dict[int, tuple[str, str]]) -> None:
    async def seed(session: Any) -> None:
        rows = (
            await session.exec(select(EventRsvp).where(col(EventRsvp.event_id) == event_id))
        ).all()
        for rsvp in rows:
            if rsvp.supporter_id in answers:
                rsvp.answer, rsvp.channel = answers[rsvp.supporter_id]
                rsvp.answered_at = console.clock()
                session.add(rsvp)

    await console.seed(seed)


async def test_an_event_from_the_form_its_counts_edit_and_cancel(
    console: LiveConsole, signed_in_page: SignedIn
) -> None:
    console.ctx.registry.add(FakeAdapter(channels=("sms", "telegram")))
    north = await console.make_team("North")
    ada = await add_member(console.ctx, {"sms": "+14155550201"}, teams=[north], name="Ada")
    bo = await add_member(console.ctx, {"telegram": "42"}, teams=[north], name="<b>Bo</b>")
    page = await signed_in_page()
    await page.get_by_role("link", name="Events").first.click()
    await expect(page.get_by_role("heading", name="Events")).to_be_visible()
    await page.get_by_role("link", name="New event").click()
    await page.get_by_role("textbox", name="Title").fill("Weekly call")
    await page.get_by_label("Starts").fill("2026-03-10T18:00")
    await page.get_by_role("textbox", name="Link or dial-in").fill("https://meet.example.org/w")
    await page.get_by_role("textbox", name="Repeats").fill("FREQ=SOMETIMES")
    await page.get_by_role("checkbox", name="North").check()
    await page.get_by_role("button", name="Create event").click()
    await expect(page.get_by_role("alert")).to_contain_text("Repeats")
    await expect(page.get_by_role("textbox", name="Title")).to_have_value("Weekly call")
    await page.get_by_role("textbox", name="Repeats").fill("")
    await page.get_by_role("checkbox", name="North").check()
    await page.get_by_role("button", name="Create event").click()
    await expect(page.get_by_role("heading", name="Weekly call")).to_be_visible()
    async with console.ctx.sessions() as session:
        event = (await session.exec(select(Event))).one()
        invitations = (
            await session.exec(select(Message).where(col(Message.kind) == "event"))
        ).all()
    assert event.id is not None and len(invitations) == 2
    await answer(console, event.id, {ada: ("yes", "sms"), bo: ("maybe", "telegram")})

    key = await console.admin_key()
    async with httpx.AsyncClient(
        base_url=console.url(""), headers={"Authorization": f"Bearer {key}"}
    ) as api:
        detail = (await api.get(f"/api/v1/events/{event.id}")).json()
    assert detail["by_channel"] == {"sms": {"yes": 1}, "telegram": {"maybe": 1}}
    await page.reload()
    table = page.get_by_role("table", name="RSVPs by channel")
    await expect(table.get_by_role("row", name="sms")).to_contain_text("1")
    await expect(table.get_by_role("row", name="telegram")).to_contain_text("1")
    await expect(page.get_by_role("table", name="RSVPs", exact=True)).to_contain_text("1")

    await page.get_by_role("link", name="Edit").click()
    await page.get_by_role("textbox", name="Title").fill("Weekly call (new room)")
    await page.get_by_role("textbox", name="Link or dial-in").fill("https://meet.example.org/x")
    await page.get_by_role("button", name="Save changes").click()
    await expect(page.get_by_role("status")).to_contain_text("saved, 2 told")
    await expect(page.get_by_role("heading", name="Weekly call (new room)")).to_be_visible()

    await page.get_by_role("button", name="Cancel event").click()
    await expect(page.get_by_role("status")).to_contain_text("cancelled, 2 told")
    await expect(page.get_by_role("button", name="Cancel event")).to_have_count(0)


async def test_the_attendance_checklist(console: LiveConsole, signed_in_page: SignedIn) -> None:
    north = await console.make_team("North")
    south = await console.make_team("South")
    ada = await add_member(console.ctx, {"sms": "+14155550201"}, teams=[north], name="Ada")
    bo = await add_member(console.ctx, {"sms": "+14155550202"}, teams=[north], name="Bo")
    await add_member(console.ctx, {"sms": "+14155550203"}, teams=[south], name="Cy")
    now = console.clock()

    async def seed(session: Any) -> int:
        event = Event(
            title="Training",
            starts_at=now,
            audience={"teams": [north]},
            team_scope_id=north,
            created_at=now,
            updated_at=now,
        )
        session.add(event)
        await session.flush()
        occurrence = EventOccurrence(event_id=event.id, starts_at=now, created_at=now)
        session.add(occurrence)
        await session.flush()
        for supporter, said in ((ada, None), (bo, "yes")):
            session.add(
                EventRsvp(
                    event_id=event.id,
                    occurrence_id=occurrence.id,
                    supporter_id=supporter,
                    answer=said,
                    invited_at=now,
                )
            )
        assert event.id is not None
        return event.id

    event_id = await console.seed(seed)
    page = await signed_in_page(role="team_lead", team=north)
    await page.goto(console.url(f"/console/events/{event_id}/attendance"))
    who = page.get_by_role("group", name="Who came")
    labels = await who.get_by_role("checkbox").all()
    assert len(labels) == 2
    await expect(who.locator("label").first).to_contain_text("Bo")  # said yes: first
    await page.get_by_role("checkbox", name="Ada").check()
    await page.get_by_role("button", name="Save attendance").click()
    await expect(page.get_by_role("status")).to_contain_text("1 came")
    await expect(page.get_by_role("checkbox", name="Ada")).to_be_checked()
    async with console.ctx.sessions() as session:
        came = (
            await session.exec(select(EventRsvp.supporter_id).where(col(EventRsvp.attended)))
        ).all()
    assert list(came) == [ada]
    box = await page.get_by_role("checkbox", name="Ada").bounding_box()
    label = await page.locator("label.attendee").first.bounding_box()
    assert box is not None and label is not None and label["height"] >= 44

    await page.goto(console.url(f"/console/supporters/{ada}"))
    events = page.get_by_role("list", name="Events (1 attended)")
    await expect(events).to_contain_text("Training")
    await expect(events).to_contain_text("came")

    other = await signed_in_page(role="team_lead", team=south)
    answer_page = await other.goto(console.url(f"/console/events/{event_id}/attendance"))
    assert answer_page is not None and answer_page.status == 404
