"""The e2e org with email both ways: outbound SMTP to a fake server and the inbound
listener running, as `serve` starts it; and delivery to that listener as a sending
server would."""

from __future__ import annotations

from typing import Any

import aiosmtplib

from channels.email.fake import FakeSmtpServer, free_port
from channels.email.listener import SmtpListener
from gateway.background import background_services
from tests.conftest import FakeClock
from tests.e2e.harness import MakeClient, Org

OURS = "team@rally.example.org"
TIMEOUT = 10.0


async def start_mail_org(
    make_client: MakeClient, clock: FakeClock, smtp: FakeSmtpServer, **settings: Any
) -> tuple[Org, SmtpListener, int]:
    """The org, its inbound listener (not started yet) and the listener's port."""
    port = free_port()
    org = await Org.start(
        make_client,
        clock,
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_from=f"Rally Team <{OURS}>",
        smtp_starttls=False,
        inbound_smtp_port=port,
        **settings,
    )
    [listener] = [s for s in background_services(org.ctx) if isinstance(s, SmtpListener)]
    return org, listener, port


async def deliver(port: int, raw: bytes, sender: str) -> str:
    """Send `raw` to the listener on `port` from envelope `sender` ("" for a bounce's null
    sender); the listener's answer, "code message", refusals included."""
    async with aiosmtplib.SMTP(
        hostname="127.0.0.1", port=port, start_tls=False, timeout=TIMEOUT
    ) as smtp:
        await smtp.mail(sender)
        await smtp.rcpt(OURS)
        try:
            answer = await smtp.data(raw)
        except aiosmtplib.SMTPDataError as refused:
            return f"{refused.code} {refused.message}"
    return f"{answer.code} {answer.message}"
