"""Demo mode: `rallypoint serve --demo` as a real process, driven in Chromium as a new
user would: sign in with the printed credentials, see the banner, play a supporter in
the Simulator (JOIN, a name, a reply, STOP) and see what they receive, the reply in the
inbox and the opt-out in the database. Without --demo there is no Simulator and no
banner."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import BrowserContext, Page, expect

from tests.console.conftest import LiveConsole
from tests.console.demo_process import REAL_DATABASE, DemoProcess, running_demo

pytestmark = pytest.mark.asyncio(loop_scope="session")
SignedIn = Callable[..., Awaitable[Page]]
NewContext = Callable[[], Awaitable[BrowserContext]]
# A fresh supporter address for each run (the demo process is shared by the module).
_numbers = itertools.count(1)
WELCOME = "Welcome to Rallypoint! What's your name?"
OPTED_OUT = "You are unsubscribed and will get no more messages. Reply START to resume."
HOSTILE = "Can I bring <script>window.pwned = 1</script> a friend?"


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def demo(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[DemoProcess]:
    workdir: Path = tmp_path_factory.mktemp("demo")
    async with running_demo(workdir) as process:
        yield process


async def sign_in(page: Page, demo: DemoProcess) -> None:
    await page.goto(demo.url())
    await page.get_by_role("textbox", name="Email").fill(demo.email)
    await page.get_by_label("Password").fill(demo.password)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Inbox")).to_be_visible()


async def send_as(page: Page, text: str) -> None:
    await page.get_by_label("Message", exact=True).fill(text)
    await page.get_by_role("button", name="Send as supporter").click()


async def test_the_demo_prints_credentials_and_seeds_an_organization(demo: DemoProcess) -> None:
    assert not (demo.workdir / REAL_DATABASE).exists()  # its own database, never the real one
    assert demo.email == "demo@rallypoint.invalid"
    assert len(demo.password) >= 12
    assert demo.url() in demo.output
    supporters = demo.query("SELECT name FROM supporters")
    assert len(supporters) >= 20
    assert {"Дмитрий Иванов", "ليلى حسن", "王芳"} <= {row[0] for row in supporters}
    channels = demo.query("SELECT DISTINCT channel FROM supporter_addresses")
    assert {row[0] for row in channels} == {"sms", "whatsapp", "telegram", "email"}
    assert demo.query("SELECT count(*) FROM conversations")[0][0] >= 3
    assert demo.query("SELECT count(*) FROM polls")[0][0] == 1
    assert demo.query("SELECT count(*) FROM checkins")[0][0] == 1


async def test_a_new_supporter_joins_talks_and_stops_in_the_simulator(
    demo: DemoProcess, new_context: NewContext
) -> None:
    number = f"+1415555{next(_numbers):04d}"
    page = await (await new_context()).new_page()
    await sign_in(page, demo)
    banner = page.get_by_role("status").filter(has_text="Demo mode")
    await expect(banner).to_be_visible()
    await page.get_by_role("link", name="Simulator", exact=True).click()
    await expect(page.get_by_role("heading", name="Simulator")).to_be_visible()
    await expect(banner).to_be_visible()

    await page.get_by_label("Supporter", exact=True).select_option("new")
    await page.get_by_label("Channel").select_option("sms")
    await page.get_by_label("New supporter's number or address").fill(number)
    await send_as(page, "")  # nothing typed: refused, the choices kept
    await expect(page.get_by_role("alert")).to_have_text("Type what the supporter writes.")
    await expect(page.get_by_label("New supporter's number or address")).to_have_value(number)

    await send_as(page, "JOIN")
    chat = page.get_by_role("list", name="Chat")
    await expect(chat.get_by_role("listitem").filter(has_text=WELCOME)).to_be_visible()
    await send_as(page, "Rosa Parkes")
    await expect(chat.get_by_role("listitem").filter(has_text="3) Phone bank")).to_be_visible()
    await send_as(page, "3")
    await expect(
        chat.get_by_role("listitem").filter(has_text="Welcome to Phone bank, Rosa Parkes!")
    ).to_be_visible()
    await send_as(page, HOSTILE)
    await expect(chat.get_by_role("listitem").filter(has_text=HOSTILE)).to_be_visible()

    await page.get_by_role("link", name="Inbox").click()
    entry = page.get_by_role("list", name="Conversations").get_by_role("listitem").first
    await expect(entry.get_by_role("link")).to_contain_text("Rosa Parkes")
    await expect(entry).to_contain_text(HOSTILE)
    assert await page.evaluate("window.pwned") is None

    await page.go_back()

    # An organizer answers over the REST API: the open page shows it without a reload.
    [(supporter_id,)] = demo.query(
        "SELECT supporter_id FROM supporter_addresses WHERE channel = 'sms' AND address = ?",
        number,
    )
    async with httpx.AsyncClient(base_url=demo.base_url, timeout=10) as api:
        answer = await api.post(
            f"/api/v1/supporters/{supporter_id}/messages",
            json={"body": "Of course, bring them along!"},
            headers={"Authorization": f"Bearer {demo.api_key}"},
        )
    assert answer.status_code == 202, answer.text
    live = chat.get_by_role("listitem").filter(has_text="Of course, bring them along!")
    await expect(live).to_be_visible()
    await send_as(page, "STOP")
    await expect(chat.get_by_role("listitem").filter(has_text=OPTED_OUT)).to_be_visible()
    rows = demo.query(
        "SELECT s.opted_out FROM supporters s JOIN supporter_addresses a"
        " ON a.supporter_id = s.id WHERE a.channel = 'sms' AND a.address = ?",
        number,
    )
    assert rows == [(1,)]


async def test_join_over_whatsapp_telegram_and_email_gets_the_welcome(
    demo: DemoProcess, new_context: NewContext
) -> None:
    n = next(_numbers)
    addresses = {
        "whatsapp": f"+25471234{n:04d}",
        "telegram": f"77700{n:04d}",
        "email": f"new{n}@example.org",
    }
    page = await (await new_context()).new_page()
    await sign_in(page, demo)
    await page.goto(demo.url("/console/simulator"))
    for channel, address in addresses.items():
        await page.get_by_label("Supporter", exact=True).select_option("new")
        await page.get_by_label("Channel").select_option(channel)
        await page.get_by_label("New supporter's number or address").fill(address)
        await send_as(page, "JOIN")
        await expect(page.get_by_role("heading", level=2)).to_contain_text(address)
        chat = page.get_by_role("list", name="Chat")
        await expect(chat.get_by_role("listitem").filter(has_text=WELCOME)).to_be_visible()
    stored = demo.query(
        "SELECT channel, address FROM supporter_addresses WHERE address IN (?, ?, ?)",
        *addresses.values(),
    )
    assert {(c, a) for c, a in stored} == {(c, str(a)) for c, a in addresses.items()}


async def test_a_seeded_supporter_answers_the_poll_in_the_simulator(
    demo: DemoProcess, new_context: NewContext, viewport: dict[str, int]
) -> None:
    # Two members of the team the seeded poll went to, one per viewport (one answer each).
    name, label = (
        ("Otieno Kamau", "Otieno Kamau (Telegram)")
        if viewport["width"] > 500
        else ("Wanjiku Njeri", "Wanjiku Njeri (Email)")
    )
    page = await (await new_context()).new_page()
    await sign_in(page, demo)
    await page.goto(demo.url("/console/simulator"))
    await page.get_by_label("Supporter", exact=True).select_option(label=label)
    await page.get_by_role("button", name="Show their phone").click()
    chat = page.get_by_role("list", name="Chat")
    poll = chat.get_by_role("listitem").filter(has_text="Which time works for the Saturday")
    await expect(poll).to_be_visible()  # what the provider fake was asked to deliver
    await send_as(page, "3")
    await expect(chat.get_by_role("listitem").filter(has_text="3").last).to_be_visible()

    def answered() -> list[tuple[object, ...]]:
        return demo.query(
            "SELECT a.option_index FROM poll_answers a JOIN supporters s"
            " ON s.id = a.supporter_id WHERE s.name = ?",
            name,
        )

    for _ in range(50):  # the webhook is answered after its commit; bounded anyway
        if answered():
            break
        await asyncio.sleep(0.1)
    assert answered() == [(2,)]


async def test_without_demo_mode_there_is_no_simulator_and_no_banner(
    console: LiveConsole, signed_in_page: SignedIn
) -> None:
    page = await signed_in_page()
    assert await page.get_by_text("Demo mode").count() == 0
    assert await page.get_by_role("link", name="Simulator").count() == 0
    answer = await page.goto(console.url("/console/simulator"))
    assert answer is not None and answer.status == 404
    await expect(page.get_by_role("heading", name="Simulator")).to_have_count(0)
    answer = await page.goto(console.url("/console/simulator/messages?channel=sms&address=x"))
    assert answer is not None and answer.status == 404
