"""Browser fixtures for console tests (reuse them for every console page).

Browser tests are async (Playwright's async API: its sync API would hold an event loop
running in the main thread for the whole session, which every async test after it trips
over). A browser test module starts with

    pytestmark = pytest.mark.asyncio(loop_scope="session")

(one event loop for the browser and the server; keep httpx-only tests in other modules)
and takes these fixtures:

- `console`: the app as a real server (uvicorn as a task on that loop, 127.0.0.1, port 0)
  on this test's database (SQLite file, or PostgreSQL when RALLYPOINT_TEST_DATABASE_URL
  is set); `console.clock` (the FakeClock the server reads), `console.url(path)`,
  `await console.seed(fn)` (runs `await fn(session)`, commits), `await
  console.make_team(name)`, `await console.make_user(role, team_id=None, ...)`, `await
  console.admin_key()`; `console.ctx` is the app's context. Stopped at teardown.
- `live_console(database_url, clock, http_client=None, run_background=False,
  **settings)`: the same as an async context manager, for a test that needs channels
  configured (a provider fake as `http_client`'s transport, the dispatcher running).
- `browser`: one Chromium (Debian's /usr/bin/chromium) for the whole test session.
- `viewport`: every test using `page` or `signed_in_page` runs twice, at a desktop size
  and at 390x844 (a phone).
- `page`: a fresh browser context and page for the test, at that viewport.
- `signed_in_page(role="coordinator", team=None, name=None)`: awaitable; a new user in a
  new context, signed in through the real form; returns the page showing the inbox (with
  `.user_id` and `.email` attached). Call it twice for two people side by side.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest
import pytest_asyncio
import uvicorn
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect
from sqlmodel.ext.asyncio.session import AsyncSession

from gateway.app import create_app
from gateway.context import GatewayContext
from gateway.keys import insert_key
from gateway.users import create_user
from storage.models import Conversation, Message, Supporter, Team, TeamMembership
from tests.conftest import FakeClock, make_settings

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
PASSWORD = "correct horse battery staple"
START_TIMEOUT = 15.0
_emails = itertools.count(1)


@dataclass
class LiveConsole:
    base_url: str
    ctx: GatewayContext
    clock: FakeClock

    def url(self, path: str = "/console/") -> str:
        return self.base_url + path

    async def seed(self, fn: Callable[[AsyncSession], Awaitable[Any]]) -> Any:
        """Run `await fn(session)` against the server's database, commit, return its value."""
        async with self.ctx.sessions() as session:
            result = await fn(session)
            await session.commit()
            return result

    async def make_team(self, name: str) -> int:
        async def add(session: AsyncSession) -> int:
            team = Team(name=name, created_at=self.clock())
            session.add(team)
            await session.flush()
            assert team.id is not None
            return team.id

        result: int = await self.seed(add)
        return result

    async def make_user(
        self,
        role: str = "coordinator",
        team_id: int | None = None,
        *,
        email: str | None = None,
        name: str | None = None,
        password: str = PASSWORD,
    ) -> tuple[int, str]:
        """A user; returns (id, email)."""
        address = email or f"user{next(_emails)}@example.org"
        async with self.ctx.sessions() as session:
            row = await create_user(
                session,
                email=address,
                password=password,
                role=role,
                team_id=team_id,
                name=name,
                now=self.clock(),
            )
        assert row.id is not None
        return row.id, address

    async def admin_key(self) -> str:
        async def add(session: AsyncSession) -> str:
            return await insert_key(session, role="admin")

        key: str = await self.seed(add)
        return key


async def add_conversation(
    session: AsyncSession,
    name: str,
    body: str,
    *,
    at: datetime,
    team_id: int | None = None,
    unread: bool = True,
    direction: str = "inbound",
) -> int:
    """A supporter with one message in their conversation; returns the conversation id."""
    supporter = Supporter(name=name, created_at=at, updated_at=at, last_inbound_at=at)
    session.add(supporter)
    await session.flush()
    assert supporter.id is not None
    if team_id is not None:
        session.add(TeamMembership(supporter_id=supporter.id, team_id=team_id))
    convo = Conversation(
        supporter_id=supporter.id,
        last_message_at=at,
        unread=unread,
        unread_count=1 if unread else 0,
        created_at=at,
    )
    session.add(convo)
    await session.flush()
    assert convo.id is not None
    session.add(
        Message(
            conversation_id=convo.id,
            supporter_id=supporter.id,
            direction=direction,
            kind="inbound" if direction == "inbound" else "one_on_one",
            channel="sms",
            address="+15555550100",
            body=body,
            status="received" if direction == "inbound" else "sent",
            created_at=at,
            updated_at=at,
        )
    )
    return convo.id


@contextlib.asynccontextmanager
async def live_console(
    database_url: str,
    clock: FakeClock,
    *,
    http_client: httpx.AsyncClient | None = None,
    run_background: bool = False,
    **overrides: Any,
) -> AsyncIterator[LiveConsole]:
    """The app as a live server with settings `overrides` (e.g. a channel's credentials)
    and an optional provider transport (`http_client`, e.g. over a provider fake);
    `run_background` runs the dispatcher too (replies reach the fake)."""
    settings = make_settings(database_url, **{"public_url": "http://127.0.0.1", **overrides})
    app = create_app(settings, clock=clock, http_client=http_client, run_background=run_background)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())

    async def started() -> None:
        while not server.started:
            if task.done():
                task.result()  # raises what stopped it
                raise RuntimeError("the console server stopped at start-up")
            await asyncio.sleep(0.01)

    try:
        await asyncio.wait_for(started(), START_TIMEOUT)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield LiveConsole(f"http://127.0.0.1:{port}", app.state.ctx, clock)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, START_TIMEOUT)


@pytest_asyncio.fixture(loop_scope="session")
async def console(database_url: str, clock: FakeClock) -> AsyncIterator[LiveConsole]:
    async with live_console(database_url, clock) as live:
        yield live


@pytest_asyncio.fixture(loop_scope="session", scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture(params=sorted(VIEWPORTS))
def viewport(request: pytest.FixtureRequest) -> dict[str, int]:
    size: dict[str, int] = VIEWPORTS[request.param]
    return size


@pytest_asyncio.fixture(loop_scope="session")
async def new_context(
    browser: Browser, viewport: dict[str, int]
) -> AsyncIterator[Callable[[], Awaitable[BrowserContext]]]:
    """Make fresh browser contexts (separate cookies) at this test's viewport."""
    opened: list[BrowserContext] = []

    async def make() -> BrowserContext:
        context = await browser.new_context(viewport=viewport)  # type: ignore[arg-type]
        # Bounded, with room for a loaded CI machine (a page load took over 5 s there).
        context.set_default_timeout(15000)
        opened.append(context)
        return context

    yield make
    for context in opened:
        await context.close()


@pytest_asyncio.fixture(loop_scope="session")
async def page(new_context: Callable[[], Awaitable[BrowserContext]]) -> Page:
    return await (await new_context()).new_page()


async def sign_in(page: Page, console: LiveConsole, email: str, password: str = PASSWORD) -> None:
    """Fill and send the sign-in form (at /console/)."""
    await page.goto(console.url("/console/"))
    await page.get_by_role("textbox", name="Email").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()


@pytest_asyncio.fixture(loop_scope="session")
async def signed_in_page(
    console: LiveConsole, new_context: Callable[[], Awaitable[BrowserContext]]
) -> Callable[..., Awaitable[Page]]:
    async def make(
        role: str = "coordinator", team: int | None = None, name: str | None = None
    ) -> Page:
        user_id, email = await console.make_user(role, team, name=name)
        page = await (await new_context()).new_page()
        await sign_in(page, console, email)
        await expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
        page.user_id = user_id  # type: ignore[attr-defined]
        page.email = email  # type: ignore[attr-defined]
        return page

    return make
