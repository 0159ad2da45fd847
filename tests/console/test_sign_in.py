"""Signing in and out of the console in Chromium, at desktop and phone sizes."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

import httpx
import pytest
from playwright.async_api import BrowserContext, Page, expect

from tests.console.conftest import PASSWORD, LiveConsole, sign_in

pytestmark = pytest.mark.asyncio(loop_scope="session")
NewContext = Callable[[], Awaitable[BrowserContext]]


async def session_cookie(context: BrowserContext) -> dict[str, object] | None:
    return next((dict(c) for c in await context.cookies() if c["name"] == "rp_session"), None)


async def test_sign_in_then_sign_out_ends_the_session(
    console: LiveConsole, page: Page, new_context: NewContext
) -> None:
    await console.make_user("coordinator", email="ada@example.org", name="Ada Organizer")
    await page.goto(console.url("/console/"))
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await sign_in(page, console, "ADA@example.org")  # emails are case-insensitive
    await expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
    await expect(page.get_by_text("Ada Organizer")).to_be_visible()
    cookie = await session_cookie(page.context)
    assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Lax"

    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    # The old cookie, replayed in another browser, signs no one in.
    other = await new_context()
    await other.add_cookies([cookie])  # type: ignore[list-item]
    replay = await other.new_page()
    await replay.goto(console.url("/console/"))
    await expect(replay.get_by_role("heading", name="Sign in")).to_be_visible()


async def test_wrong_password_shows_an_error_and_no_session(
    console: LiveConsole, page: Page
) -> None:
    await console.make_user(email="ada@example.org")
    await sign_in(page, console, "ada@example.org", "not the password at all")
    await expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")
    await expect(page.get_by_role("textbox", name="Email")).to_have_value("ada@example.org")
    assert await session_cookie(page.context) is None
    await sign_in(page, console, "nobody@example.org", PASSWORD)
    await expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")


async def test_ten_failures_lock_the_email_for_fifteen_minutes(
    console: LiveConsole, page: Page
) -> None:
    await console.make_user(email="ada@example.org")
    await console.make_user(email="bea@example.org")
    async with httpx.AsyncClient(base_url=console.base_url) as http:  # 9 quick failures
        form = await http.get("/console/")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token is not None
        for _ in range(9):
            failed = await http.post(
                "/console/sign-in",
                data={"email": "ada@example.org", "password": "guess", "csrf_token": token[1]},
            )
            assert failed.status_code == 401
    await sign_in(page, console, "ada@example.org", "wrong password guess")  # the tenth
    await expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")
    async with page.expect_response(console.url("/console/sign-in")) as answer:
        await sign_in(page, console, "ada@example.org")  # the right password, refused
    assert (await answer.value).status == 429
    await expect(page.get_by_role("alert")).to_contain_text("Too many failed sign-ins")
    assert await session_cookie(page.context) is None

    await sign_in(page, console, "bea@example.org")  # other emails are not locked
    await expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
    await page.get_by_role("button", name="Sign out").click()

    console.clock.advance(minutes=14, seconds=59)
    await sign_in(page, console, "ada@example.org")
    await expect(page.get_by_role("alert")).to_contain_text("Too many failed sign-ins")
    console.clock.advance(seconds=2)
    await sign_in(page, console, "ada@example.org")
    await expect(page.get_by_role("heading", name="Inbox")).to_be_visible()


async def test_a_post_without_the_csrf_token_is_refused(
    console: LiveConsole, signed_in_page: Callable[..., Awaitable[Page]]
) -> None:
    page = await signed_in_page()
    for headers in ({}, {"X-CSRF-Token": "forged-token-forged-token-forged-token"}):
        refused = await page.request.post(
            console.url("/console/sign-out"), headers=headers, form={}
        )
        assert refused.status == 403
        text = await refused.text()
        assert "Forbidden" in text and "Traceback" not in text
    await page.reload()  # nothing changed: still signed in
    await expect(page.get_by_role("heading", name="Inbox")).to_be_visible()


async def test_a_deactivated_user_is_signed_out_at_once(
    console: LiveConsole, signed_in_page: Callable[..., Awaitable[Page]]
) -> None:
    page = await signed_in_page()
    key = await console.admin_key()
    async with httpx.AsyncClient() as http:
        answer = await http.patch(
            console.url(f"/api/v1/users/{page.user_id}"),  # type: ignore[attr-defined]
            json={"active": False},
            headers={"Authorization": f"Bearer {key}"},
        )
    assert answer.status_code == 200
    await page.reload()
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await sign_in(page, console, page.email)  # type: ignore[attr-defined]
    await expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")
