"""CSV import in Chromium: the result page counts created and updated rows and lists the
rejected ones with their reasons, escaped."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from playwright.async_api import Page, expect
from sqlalchemy import func
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Supporter
from tests.console.conftest import LiveConsole
from tests.console.people import add_supporter

pytestmark = pytest.mark.asyncio(loop_scope="session")
SignedIn = Callable[..., Awaitable[Page]]
CSV = (
    "name,phone,email,tags\n"
    "Ada,+14155550101,,host\n"  # new
    "Known Again,+14155550199,known@example.org,\n"  # matches Known by phone: updated
    ",+14155550102,,\n"  # no name
    "Img,<img src=x onerror=window.pwned=1>,,\n"  # a bad phone, echoed as text
    "Both,+14155550199,other@example.org,\n"  # Known's phone again: row 2's duplicate
)


async def test_import_shows_counts_and_rejected_rows(
    console: LiveConsole, signed_in_page: SignedIn
) -> None:
    now = console.clock()

    async def seed(session: AsyncSession) -> None:
        await add_supporter(session, "Known", at=now, phone="+14155550199")
        await add_supporter(session, "Other", at=now, email="other@example.org")

    await console.seed(seed)
    page = await signed_in_page()
    await page.goto(console.url("/console/supporters"))
    await page.get_by_role("link", name="Import CSV").click()
    await page.get_by_label("CSV file").set_input_files(
        files=[{"name": "people.csv", "mimeType": "text/csv", "buffer": CSV.encode()}]
    )
    await page.get_by_role("button", name="Import").click()
    summary = page.get_by_role("status")
    await expect(summary).to_have_text(
        "people.csv: 1 created, 1 updated, 3 rejected. 1 of them repeat an earlier row."
    )
    rows = page.get_by_role("table", name="Rejected rows").locator("tbody tr")
    await expect(rows).to_have_count(3)
    await expect(rows.nth(0)).to_contain_text("3")
    await expect(rows.nth(0)).to_contain_text("name: a name is required")
    await expect(rows.nth(1)).to_contain_text("<img src=x onerror=window.pwned=1>")
    await expect(rows.nth(2)).to_contain_text("duplicate of row 2: the same phone")
    assert await page.evaluate("window.pwned") is None
    assert await page.locator("main img").count() == 0

    async def names(session: AsyncSession) -> list[str]:
        rows = await session.exec(select(Supporter.name).order_by(Supporter.id))
        return list(rows.all())

    assert await console.seed(names) == ["Known Again", "Other", "Ada"]

    # A file that is not UTF-8: the form again with the reason, nothing stored.
    await page.get_by_label("CSV file").set_input_files(
        files=[{"name": "latin1.csv", "mimeType": "text/csv", "buffer": b"name\nJos\xe9\n"}]
    )
    await page.get_by_role("button", name="Import").click()
    await expect(page.get_by_role("alert")).to_contain_text("not UTF-8")

    async def count(session: AsyncSession) -> int:
        return int((await session.exec(select(func.count()).select_from(Supporter))).one())

    assert await console.seed(count) == 3
