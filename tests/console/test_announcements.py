"""Announcements in Chromium: compose → Preview (nothing sent) → Send once even when sent
twice; schedule and cancel; the report's chart against the API; team-lead scope; CSRF."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, expect
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from routing.people.fields import define_field
from storage.field_values import set_values
from storage.models import Announcement, Message
from tests.console.conftest import LiveConsole
from tests.gateway.seed import add_member, count, messages_of
from tests.routing.fake_adapter import FakeAdapter, make_dispatcher

pytestmark = pytest.mark.asyncio(loop_scope="session")
SignedIn = Callable[..., Awaitable[Page]]
HOSTILE = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">Rally!'


async def north_team(console: LiveConsole) -> dict[str, Any]:
    """Team North: on sms, on telegram (and sms), opted out, email only (not configured);
    team South: one on sms. A fake adapter serves sms and telegram."""
    adapter = FakeAdapter(channels=("sms", "telegram"))
    console.ctx.registry.add(adapter)
    ctx = console.ctx
    north, south = await console.make_team("North"), await console.make_team("South")
    ids = {
        "sms": await add_member(ctx, {"sms": "+14155550101"}, teams=[north], name="Ann Sms"),
        "telegram": await add_member(
            ctx, {"telegram": "4242", "sms": "+14155550102"}, teams=[north], name="Tom Tg"
        ),
        "opted_out": await add_member(
            ctx, {"sms": "+14155550103"}, teams=[north], opted_out=True, name="Otto Out"
        ),
        "email": await add_member(ctx, {"email": "e@example.org"}, teams=[north], name="Em"),
        "south": await add_member(ctx, {"sms": "+14155550104"}, teams=[south], name="Sue S"),
    }
    return {"adapter": adapter, "north": north, "south": south, "ids": ids}


async def compose(page: Page, console: LiveConsole, body: str, team: str | None) -> None:
    await page.goto(console.url("/console/announcements/new"))
    await page.get_by_role("textbox", name="Message").fill(body)
    if team is not None:
        await page.get_by_role("checkbox", name=team).check()
    await page.get_by_role("button", name="Preview").click()
    await expect(page.get_by_role("heading", name="Preview")).to_be_visible()


async def form_fields(page: Page, action: str) -> dict[str, Any]:
    """The fields of the form posting to `action`, as the browser would send them."""
    fields: dict[str, Any] = await page.locator(f'form[action="{action}"]').evaluate(
        "f => Object.fromEntries(new FormData(f))"
    )
    return fields


async def test_preview_then_send_goes_out_once_even_when_sent_twice(
    console: LiveConsole, signed_in_page: SignedIn
) -> None:
    world = await north_team(console)
    page = await signed_in_page()
    await compose(page, console, "Rally at noon, bring water", "North")

    by_channel = page.get_by_role("table", name="Recipients by channel")
    await expect(by_channel.get_by_role("row", name="sms")).to_contain_text("1")
    await expect(by_channel.get_by_role("row", name="telegram")).to_contain_text("1")
    facts = page.locator("section.preview dl")
    await expect(facts).to_contain_text("Audience4")
    await expect(facts).to_contain_text("Opted out1")
    await expect(facts).to_contain_text("Unreachable1")
    await expect(facts).to_contain_text("1 per message, 1 in all")
    await expect(page.get_by_label("Longest variant").locator("pre")).to_have_text(
        "Rally at noon, bring water"
    )
    assert await count(console.ctx, Announcement) == 0  # a preview sends nothing

    fields = await form_fields(page, "/console/announcements")
    await page.get_by_role("button", name="Send").dblclick()
    await expect(page.get_by_role("heading", name="Announcement report")).to_be_visible()
    # The browser's back-and-resubmit: the same form again.
    again = await page.request.post(console.url("/console/announcements"), form=fields)
    assert again.ok and again.url == page.url

    assert await count(console.ctx, Announcement) == 1
    messages = await messages_of(console.ctx)
    assert sorted(m.supporter_id for m in messages) == sorted(
        world["ids"][k] for k in ("sms", "telegram", "opted_out", "email")
    )
    await make_dispatcher(console.ctx, console.clock).run_once()
    sent = sorted((m.channel, m.to) for m in world["adapter"].calls)
    assert sent == [("sms", "+14155550101"), ("telegram", "4242")]
    assert all(m.body == "Rally at noon, bring water" for m in world["adapter"].calls)


async def test_schedule_then_cancel(console: LiveConsole, signed_in_page: SignedIn) -> None:
    world = await north_team(console)
    page = await signed_in_page()
    await page.goto(console.url("/console/announcements/new"))
    await page.get_by_role("textbox", name="Message").fill("Tomorrow's canvass")
    await page.get_by_role("checkbox", name="North").check()
    when = console.clock() + timedelta(days=1)
    await page.get_by_label("Send at (UTC)").fill(when.strftime("%Y-%m-%dT%H:%M"))
    await page.get_by_role("button", name="Preview").click()
    await page.get_by_role("button", name="Schedule").click()
    await expect(page.get_by_text(when.strftime("%Y-%m-%d %H:%M") + " (UTC)")).to_be_visible()
    await expect(page.locator("dl.facts")).to_contain_text("Statescheduled")
    report_url = page.url
    await page.get_by_role("link", name="Announcements", exact=True).click()
    row = page.get_by_role("table", name="Announcements").get_by_role("row").nth(1)
    await expect(row).to_contain_text("Tomorrow's canvass")
    await expect(row).to_contain_text("scheduled")
    await page.goto(report_url)

    await page.get_by_role("button", name="Cancel announcement").click()
    await expect(page.get_by_role("status")).to_contain_text("Cancelled")
    await expect(page.get_by_role("button", name="Cancel announcement")).to_have_count(0)
    await expect(page.locator("dl.facts")).to_contain_text("Statecancelled")
    async with console.ctx.sessions() as session:
        announcement = (await session.exec(select(Announcement))).one()
    assert announcement.state == "cancelled"
    console.clock.advance(days=2)
    await make_dispatcher(console.ctx, console.clock).run_once()
    assert world["adapter"].calls == []


async def test_report_chart_matches_the_api_and_escapes_the_body(
    console: LiveConsole, signed_in_page: SignedIn
) -> None:
    world = await north_team(console)
    key = await console.admin_key()
    async with httpx.AsyncClient(
        base_url=console.url(""), headers={"Authorization": f"Bearer {key}"}
    ) as api:
        made = await api.post(
            "/api/v1/announcements", json={"body": HOSTILE, "audience": {"teams": ["North"]}}
        )
        assert made.status_code == 202, made.text
        announcement_id = made.json()["id"]
        # Ann writes back after the announcement: she replied, the others did not.
        console.clock.advance(minutes=5)

        async def reply(session: Any) -> None:
            first = (
                await session.exec(
                    select(Message).where(Message.supporter_id == world["ids"]["sms"])
                )
            ).first()
            now = console.clock()
            session.add(
                Message(
                    conversation_id=first.conversation_id,
                    supporter_id=world["ids"]["sms"],
                    direction="inbound",
                    kind="inbound",
                    channel="sms",
                    address="+14155550101",
                    body="I'll be there",
                    status="received",
                    created_at=now,
                    updated_at=now,
                )
            )

        await console.seed(reply)
        report = (await api.get(f"/api/v1/announcements/{announcement_id}")).json()

    page = await signed_in_page()
    await page.goto(console.url(f"/console/announcements/{announcement_id}"))
    await expect(page.get_by_label("Message", exact=True).locator("pre")).to_have_text(HOSTILE)
    assert await page.evaluate("window.pwned") is None
    assert await page.locator("main script, main img").count() == 0

    chart = page.get_by_role("img", name="Messages by channel and status")
    await expect(chart).to_be_visible()
    drawn: dict[str, dict[str, int]] = {}
    for rect in await chart.locator("rect").all():
        bar = rect.locator("xpath=..")
        channel = await bar.get_attribute("data-label")
        series = await rect.get_attribute("data-series")
        value = await rect.get_attribute("data-value")
        assert channel and series and value
        drawn.setdefault(channel, {})[series] = int(value)
    assert drawn == {"no channel" if k == "none" else k: v for k, v in report["by_channel"].items()}
    assert drawn["no channel"] == {"skipped": 1, "failed": 1}
    table = page.get_by_role("table", name="Messages by channel and status")
    for channel, statuses in report["by_channel"].items():
        label = "no channel" if channel == "none" else channel
        row = table.get_by_role("row", name=label, exact=False).first
        await expect(row).to_contain_text(str(sum(statuses.values())))
    await expect(page.get_by_role("list", name="Failure reasons")).to_contain_text(
        "email: not configured"
    )
    await expect(page.get_by_role("list", name="Replied (1)")).to_contain_text("Ann Sms")
    silent = page.get_by_role("list", name="No reply (3)")
    for name in ("Tom Tg", "Otto Out", "Em"):
        await expect(silent).to_contain_text(name)


async def test_a_team_lead_announces_to_their_team_only(
    console: LiveConsole, signed_in_page: SignedIn
) -> None:
    world = await north_team(console)
    page = await signed_in_page("team_lead", world["north"])
    await page.goto(console.url("/console/announcements/new"))
    await expect(page.get_by_text("Your team: North")).to_be_visible()
    await expect(page.get_by_role("checkbox")).to_have_count(0)  # no Everyone, no teams
    await expect(page.get_by_text("South")).to_have_count(0)

    await page.get_by_role("textbox", name="Message").fill("North only")
    await page.get_by_role("button", name="Preview").click()
    await expect(page.get_by_role("table", name="Recipients by channel")).to_be_visible()
    fields = await form_fields(page, "/console/announcements")
    assert fields["teams"] == str(world["north"])
    forced = {**fields, "teams": str(world["south"])}
    answer = await page.request.post(console.url("/console/announcements"), form=forced)
    assert answer.status == 403
    assert "team" in await answer.text()
    preview = await page.request.post(console.url("/console/announcements/preview"), form=forced)
    assert preview.status == 403
    assert await count(console.ctx, Announcement) == 0
    assert await count(console.ctx, Message) == 0


async def test_without_the_csrf_token_nothing_is_sent_or_cancelled(
    console: LiveConsole, signed_in_page: SignedIn
) -> None:
    await north_team(console)
    page = await signed_in_page()
    await compose(page, console, "Forged?", "North")
    fields = await form_fields(page, "/console/announcements")
    forged = {k: v for k, v in fields.items() if k != "csrf_token"}
    answer = await page.request.post(console.url("/console/announcements"), form=forged)
    assert answer.status == 403
    wrong = await page.request.post(
        console.url("/console/announcements"), form={**fields, "csrf_token": "x" * 43}
    )
    assert wrong.status == 403
    assert await count(console.ctx, Announcement) == 0

    await page.get_by_role("button", name="Send").click()
    await expect(page.get_by_role("heading", name="Announcement report")).to_be_visible()
    cancel_url = page.url.split("?")[0] + "/cancel"
    refused = await page.request.post(cancel_url, form={"csrf_token": ""})
    assert refused.status == 403
    async with console.ctx.sessions() as session:
        assert (await session.exec(select(Announcement))).one().state != "cancelled"


async def test_the_merge_variable_picker_inserts_at_the_cursor_and_the_preview_renders_it(
    console: LiveConsole, signed_in_page: SignedIn
) -> None:
    world = await north_team(console)

    async def define_fields(session: AsyncSession) -> None:
        county = await define_field(session, "county", "text", None, console.clock())
        await define_field(session, "shirt", "choice", ["S", "M"], console.clock())
        assert county.id is not None
        for key, value in (("sms", "Kisumu West"), ("telegram", "Nakuru")):
            await set_values(session, world["ids"][key], {county.id: value})

    await console.seed(define_fields)
    page = await signed_in_page()
    await page.goto(console.url("/console/announcements/new"))
    picker = page.get_by_label("Insert a merge variable")
    options = await picker.locator("option").all_text_contents()
    assert options == ["Choose…", 'First name (or "friend")', "Full name", "county", "shirt"]
    message = page.get_by_role("textbox", name="Message")
    await message.fill("Hi ! County: ")
    await message.evaluate("el => el.setSelectionRange(3, 3)")
    await picker.select_option(label='First name (or "friend")')
    await page.get_by_role("button", name="Insert").click()
    await expect(message).to_have_value("Hi {first_name|friend}! County: ")
    await message.press("End")
    await picker.select_option(label="county")
    await page.get_by_role("button", name="Insert").click()
    await expect(message).to_have_value("Hi {first_name|friend}! County: {fields.county}")
    await page.get_by_role("checkbox", name="North").check()
    await page.get_by_role("button", name="Preview").click()
    longest = page.get_by_label("Longest variant").locator("pre")
    # Ann Sms (Kisumu West) and Tom Tg (Nakuru): the longer rendering is shown.
    await expect(longest).to_have_text("Hi Ann! County: Kisumu West")
    sent = await form_fields(page, "/console/announcements")
    assert sent["body"] == "Hi {first_name|friend}! County: {fields.county}"
