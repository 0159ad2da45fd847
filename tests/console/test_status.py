"""The status page in Chromium: an admin sees the channels on and their webhook URLs, the
outbox and spool, the last 24 hours and the latest failures; others get no page."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

import pytest
import pytest_asyncio
from playwright.async_api import BrowserContext, expect
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import ChannelCircuit, Message, OutboxItem
from tests.channels.twilio_case import SETTINGS
from tests.conftest import FakeClock
from tests.console.conftest import LiveConsole, live_console, sign_in
from tests.console.thread_case import add_supporter

pytestmark = pytest.mark.asyncio(loop_scope="session")
NewContext = Callable[[], Awaitable[BrowserContext]]


@pytest_asyncio.fixture(loop_scope="session")
async def twilio_console(database_url: str, clock: FakeClock) -> AsyncIterator[LiveConsole]:
    overrides = {**SETTINGS, "public_url": "https://rally.example.org"}
    async with live_console(database_url, clock, **overrides) as live:
        yield live


async def test_the_admin_sees_the_status_of_the_service(
    twilio_console: LiveConsole, new_context: NewContext
) -> None:
    live = twilio_console
    now = live.clock()

    async def seed(session: AsyncSession) -> int:
        convo = await add_supporter(session, "Ann", "hello", at=now - timedelta(hours=1))
        failed = Message(
            conversation_id=convo,
            supporter_id=1,
            direction="outbound",
            channel="sms",
            address="+14155550101",
            body="we missed you",
            status="failed",
            error="sms: InvalidRecipient (21211) <b>bold</b>",
            created_at=now - timedelta(minutes=50),
            updated_at=now - timedelta(minutes=40),
        )
        waiting = Message(
            conversation_id=convo,
            supporter_id=1,
            direction="outbound",
            channel="sms",
            address="+14155550101",
            body="still waiting",
            status="queued",
            created_at=now - timedelta(minutes=5),
            updated_at=now - timedelta(minutes=5),
        )
        session.add_all([failed, waiting])
        await session.flush()
        assert waiting.id is not None and failed.id is not None
        session.add(
            OutboxItem(
                message_id=waiting.id,
                due_at=now - timedelta(minutes=5),
                attempts=2,  # a throttled or failing provider: it waits for its retry
                created_at=now,
            )
        )
        return failed.id

    failed_id = await live.seed(seed)
    _, email = await live.make_user("admin")
    page = await (await new_context()).new_page()
    await sign_in(page, live, email)
    await page.get_by_role("link", name="Status").click()
    await expect(page.get_by_role("heading", name="Status", level=1)).to_be_visible()
    await expect(page.get_by_text("On: sms, whatsapp")).to_be_visible()
    urls = page.get_by_role("table", name="Webhook URLs")
    await expect(urls).to_contain_text("https://rally.example.org/webhooks/twilio")
    await expect(urls).to_contain_text("https://rally.example.org/webhooks/twilio/status")
    queues = page.get_by_role("region", name="Queues")
    await expect(queues).to_contain_text("Outbox due1 (oldest waiting 5 min)")
    await expect(queues).to_contain_text("Webhook spool0 records, 0 bytes")
    await expect(queues).to_contain_text("Retryingsms 1")
    await expect(queues).to_contain_text("Send ratestwilio 1.0/s per sender")
    day = page.get_by_role("region", name="Last 24 hours")
    await expect(day).to_contain_text("Received1")
    await expect(day).to_contain_text("Sentfailed 1, queued 1")
    await expect(day).to_contain_text("Failure rate50%")
    failures = page.get_by_role("table", name="Recent failures")
    await expect(failures).to_contain_text("sms: InvalidRecipient (21211) <b>bold</b>")  # escaped
    await failures.get_by_role("link", name=f"#{failed_id}").click()
    await expect(page.get_by_text("we missed you")).to_be_visible()


async def test_only_admins_get_the_status_page(
    twilio_console: LiveConsole, new_context: NewContext
) -> None:
    live = twilio_console
    _, email = await live.make_user("coordinator")
    page = await (await new_context()).new_page()
    await sign_in(page, live, email)
    await expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
    await expect(page.get_by_role("link", name="Status")).to_have_count(0)
    response = await page.goto(live.url("/console/status"))
    assert response is not None and response.status == 403
    await expect(page.get_by_text("Only admins see the status page.")).to_be_visible()


async def test_the_status_page_shows_each_circuit_breaker(
    twilio_console: LiveConsole, new_context: NewContext
) -> None:
    live = twilio_console
    now = live.clock()
    page = await (await new_context()).new_page()
    _, email = await live.make_user("admin")
    await sign_in(page, live, email)
    await page.goto(live.url("/console/status"))
    breakers = page.get_by_role("region", name="Circuit breakers")
    await expect(breakers).to_contain_text("no circuit has opened")

    async def seed(session: AsyncSession) -> None:
        session.add_all(
            [
                ChannelCircuit(
                    channel="sms",
                    sender="+14155550100",
                    state="open",
                    failures=5,
                    until=now + timedelta(seconds=30),
                    updated_at=now - timedelta(seconds=10),
                ),
                ChannelCircuit(
                    channel="whatsapp",
                    sender="+14155550177",
                    state="probing",
                    failures=6,
                    until=now + timedelta(minutes=2),
                    updated_at=now - timedelta(minutes=1),
                ),
                ChannelCircuit(
                    channel="telegram", sender="<b>bot</b>", state="closed", updated_at=now
                ),
            ]
        )

    await live.seed(seed)
    await page.reload()
    table = page.get_by_role("table", name="Circuit breakers")
    rows = table.locator("tbody tr")
    await expect(rows).to_have_count(3)
    stamp = "%Y-%m-%d %H:%M:%S"
    opened = (now + timedelta(seconds=30)).strftime(stamp)
    await expect(rows.nth(0)).to_have_text(
        "sms…0100open5" + (now - timedelta(seconds=10)).strftime(stamp) + f"{opened} (in 30 s)"
    )
    # Ordered by channel; the sender is masked and what it holds is escaped.
    await expect(rows.nth(1)).to_have_text("telegram…</b>closed0" + now.strftime(stamp) + "-")
    await expect(rows.nth(2)).to_contain_text("whatsapp…0177half-open (one probe out)6")
    await expect(rows.nth(2)).to_contain_text((now + timedelta(minutes=2)).strftime(stamp))
    # /healthz says the same (open and half-open count there; closed ones do not).
    health = await page.request.get(live.url("/healthz"))
    circuits = (await health.json())["circuits"]
    assert [(c["channel"], c["state"]) for c in circuits] == [
        ("sms", "open"),
        ("whatsapp", "probing"),
    ]
