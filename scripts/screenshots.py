"""Take the README's console screenshots from a live demo (see scripts/screenshots)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from playwright.sync_api import Page, Response, expect, sync_playwright

from channels.email.fake import free_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run"]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
START_TIMEOUT = 90.0
PROVIDER_PREFIXES = ("RALLYPOINT_", "TWILIO_", "WHATSAPP_", "TELEGRAM_", "SMTP_")


def start_demo(workdir: Path) -> tuple[subprocess.Popen[bytes], str, str, str]:
    """The demo process, its base URL and the console email and password it printed."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(PROVIDER_PREFIXES)}
    env.update(RALLYPOINT_PORT=str(port), RALLYPOINT_LOG_LEVEL="WARNING")
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "serve", "--demo"],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=(workdir / "demo.log").open("wb"),
    )
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for raw in process.stdout:
            lines.append(raw.decode())
            if "Ctrl-C" in lines[-1]:
                ready.set()
        ready.set()

    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(START_TIMEOUT) or process.poll() is not None:
        process.kill()
        sys.exit(f"the demo did not start; see {workdir / 'demo.log'}")
    output = "".join(lines)
    email = re.search(r"Email:\s*(\S+)", output)
    password = re.search(r"Password:\s*(\S+)", output)
    assert email and password, output
    return process, f"http://127.0.0.1:{port}", email.group(1), password.group(1)


def answered(response: Response | None) -> bool:
    return response is not None and response.status == 200


def shoot(page: Page, out: Path, name: str, *, full_page: bool = False) -> None:
    path = out / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    print(f"  {path} ({path.stat().st_size // 1024} KB)")


def sign_in(page: Page, base: str, email: str, password: str) -> None:
    page.goto(base + "/console/")
    page.get_by_role("textbox", name="Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()


def first_thread(page: Page, base: str) -> str | None:
    link = page.get_by_role("list", name="Conversations").get_by_role("link").first
    href = link.get_attribute("href") if link.count() else None
    return base + href if href else None


def desktop_pages(page: Page, base: str, out: Path, email: str, password: str) -> None:
    page.goto(base + "/console/")
    shoot(page, out, "sign-in")
    sign_in(page, base, email, password)
    shoot(page, out, "inbox-desktop")
    thread = first_thread(page, base)
    if thread and answered(page.goto(thread)):
        shoot(page, out, "thread-desktop")
    if answered(page.goto(base + "/console/supporters")):
        shoot(page, out, "supporters")
    if answered(page.goto(base + "/console/announcements/new")):
        page.get_by_role("textbox", name="Message").fill(
            "Canvass on Saturday at 9 at the market. Reply 1 if you can come!"
        )
        page.get_by_role("checkbox", name="Everyone").check()
        page.get_by_role("button", name="Preview").click()
        page.wait_for_load_state("networkidle")
        shoot(page, out, "announcement-preview", full_page=True)
    simulator(page, base, out, "simulator-desktop", "Can I bring my cousin too?")


def simulator(page: Page, base: str, out: Path, name: str, text: str) -> None:
    if not answered(page.goto(base + "/console/simulator")):
        return
    page.get_by_label("Supporter", exact=True).select_option(label="Amina Wanjiru (WhatsApp)")
    page.get_by_label("Message", exact=True).fill(text)
    page.get_by_role("button", name="Send as supporter").click()
    expect(page.get_by_role("list", name="Chat")).to_contain_text(text)
    shoot(page, out, name)


def phone_pages(page: Page, base: str, out: Path, email: str, password: str) -> None:
    sign_in(page, base, email, password)
    shoot(page, out, "inbox-phone")
    thread = first_thread(page, base)
    if thread and answered(page.goto(thread)):
        shoot(page, out, "thread-phone")
    simulator(page, base, out, "simulator-phone", "Where exactly at the market?")


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots").resolve()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rallypoint-screens-") as tmp:
        process, base, email, password = start_demo(Path(tmp))
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                for size, take in ((DESKTOP, desktop_pages), (PHONE, phone_pages)):
                    context = browser.new_context(viewport=size)  # type: ignore[arg-type]
                    context.set_default_timeout(10_000)
                    take(context.new_page(), base, out, email, password)
                    context.close()
                browser.close()
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
