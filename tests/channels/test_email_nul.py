"""A mail with a NUL character in its text (PostgreSQL's text cannot hold one) is stored,
the NUL replaced, instead of being refused and lost: a signed webhook with one is a 400,
but a mail is what a person wrote."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import aiosmtplib
import httpx

from channels.email.fake import free_port
from channels.email.listener import SmtpListener
from gateway.background import background_services
from tests.conftest import bearer, new_key

OURS = "team@rally.example.org"
MAIL = (
    b"From: Wanjiru <wanjiru@example.net>\r\n"
    b"To: " + OURS.encode() + b"\r\n"
    b"Subject: Saturday\r\n"
    b"Message-ID: <nul-1@example.net>\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"I can bring\x00 the banners.\r\n"
)


async def test_a_mail_with_a_nul_is_stored_with_the_nul_replaced(
    make_client: Callable[..., Awaitable[httpx.AsyncClient]],
) -> None:
    port = free_port()
    client = await make_client(inbound_smtp_port=port, inbound_email_domains=["rally.example.org"])
    ctx = client.ctx  # type: ignore[attr-defined]
    client.headers.update(bearer(await new_key(ctx)))
    [listener] = [s for s in background_services(ctx) if isinstance(s, SmtpListener)]
    await listener.start()
    try:
        errors, _ = await aiosmtplib.send(
            MAIL,
            sender="wanjiru@example.net",
            recipients=[OURS],
            hostname="127.0.0.1",
            port=port,
            start_tls=False,
            timeout=10,
        )
    finally:
        await listener.stop()
    assert errors == {}
    [conversation] = (await client.get("/api/v1/conversations")).json()["items"]
    messages = (await client.get(f"/api/v1/conversations/{conversation['id']}/messages")).json()[
        "items"
    ]
    assert [m["body"] for m in messages] == ["I can bring\ufffd the banners."]
