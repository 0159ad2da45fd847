"""Email end to end: SMTP in → conversation in the REST API → reply → SMTP out, threaded."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import aiosmtplib
import httpx
from sqlmodel import select

from channels.email.fake import FakeSmtpServer, free_port
from channels.email.listener import SmtpListener
from gateway.background import background_services
from routing.dispatch.dispatcher import Dispatcher
from storage.models import Message
from tests.conftest import bearer, new_key

TESTDATA = Path(__file__).parents[2] / "channels" / "email" / "testdata"
OURS = "team@rally.example.org"

ClientFactory = Callable[..., Awaitable[httpx.AsyncClient]]


async def test_mail_in_shows_in_api_and_reply_goes_out_threaded(
    make_client: ClientFactory,
) -> None:
    with FakeSmtpServer() as outbound_smtp:
        inbound_port = free_port()
        client = await make_client(
            smtp_host="127.0.0.1",
            smtp_port=outbound_smtp.port,
            smtp_from=f"Rally Team <{OURS}>",
            smtp_starttls=False,
            inbound_smtp_port=inbound_port,
        )
        ctx = client.ctx  # type: ignore[attr-defined]
        client.headers.update(bearer(await new_key(ctx)))
        [listener] = [s for s in background_services(ctx) if isinstance(s, SmtpListener)]
        await listener.start()
        try:
            await aiosmtplib.send(
                (TESTDATA / "gmail_reply.eml").read_bytes(),
                sender="sofia.rossi@gmail.example",
                recipients=[OURS],
                hostname="127.0.0.1",
                port=inbound_port,
                start_tls=False,
                timeout=10,
            )
        finally:
            await listener.stop()

        conversations = (await client.get("/api/v1/conversations")).json()["items"]
        [conversation] = conversations
        messages = (
            await client.get(f"/api/v1/conversations/{conversation['id']}/messages")
        ).json()["items"]
        inbound = [m for m in messages if m["direction"] == "inbound"]
        assert len(inbound) == 1
        assert inbound[0]["channel"] == "email"
        assert inbound[0]["body"] == "Yes, I can host it at my place on Friday \U0001f60a"
        assert inbound[0]["status"] == "received"
        assert inbound[0]["provider_message_id"] == "<CAGmail.0006@mail.gmail.example>"

        # The coordinator answers; the dispatcher sends it over SMTP, threaded.
        reply = await client.post(
            f"/api/v1/supporters/{conversation['supporter_id']}/messages",
            json={"body": "Wonderful, thank you!", "channel": "email"},
        )
        assert reply.status_code == 202, reply.text
        await Dispatcher(ctx).run_until_idle()

        [mail] = outbound_smtp.messages
        assert mail.rcpt_tos == ("sofia.rossi@gmail.example",)
        assert mail.message["In-Reply-To"] == "<CAGmail.0006@mail.gmail.example>"
        assert mail.message["References"] == (
            "<rp-out-90@rally.example.org> <CAGmail.0006@mail.gmail.example>"
        )
        assert mail.message["Subject"] == "Re: Can you host a meeting?"
        async with ctx.sessions() as session:
            sent = await session.get(Message, reply.json()["id"])
        assert sent is not None
        assert sent.status == "sent"
        assert sent.provider_message_id == mail.message["Message-ID"]

        # The supporter answers our mail: it lands in the same conversation.
        answer = (
            f"From: Sofia Rossi <Sofia.Rossi@gmail.example>\r\nTo: {OURS}\r\n"
            f"Subject: Re: Can you host a meeting?\r\nMessage-ID: <CAGmail.0007@gmail.example>\r\n"
            f"In-Reply-To: {mail.message['Message-ID']}\r\n\r\nSee you Friday!\r\n\r\n"
            f"On Wed, Mar 4, 2026 at 3:00 PM Rally Team <{OURS}> wrote:\r\n"
            "> Wonderful, thank you!\r\n"
        ).encode()
        await listener.start()
        try:
            await aiosmtplib.send(
                answer,
                sender="sofia.rossi@gmail.example",
                recipients=[OURS],
                hostname="127.0.0.1",
                port=inbound_port,
                start_tls=False,
                timeout=10,
            )
        finally:
            await listener.stop()
        async with ctx.sessions() as session:
            rows = (
                await session.exec(
                    select(Message).where(Message.direction == "inbound").order_by(Message.id)
                )
            ).all()
        assert [r.body for r in rows][-1] == "See you Friday!"
        assert {r.conversation_id for r in rows} == {conversation["id"]}
        assert rows[-1].in_reply_to == mail.message["Message-ID"]
