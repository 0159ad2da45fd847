"""The inbound SMTP listener over real SMTP on loopback, storing through routing.ingest."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiosmtplib
import httpx
import pytest
from sqlalchemy import func
from sqlmodel import select

from channels.base import InboundMessage, StatusUpdate
from channels.email.fake import free_port
from channels.email.listener import RecipientPolicy, SmtpListener
from gateway.background import background_services
from routing.inbound.store import ingest
from storage.models import Conversation, Message, Supporter, SupporterAddress

TESTDATA = Path(__file__).parents[2] / "channels" / "email" / "testdata"
OURS = "team@rally.example.org"
TIMEOUT = 10.0

ClientFactory = Callable[..., Awaitable[httpx.AsyncClient]]


@dataclass
class Inbox:
    client: httpx.AsyncClient
    port: int

    async def deliver(
        self, raw: bytes, *, to: str = OURS, sender: str = "someone@example.com"
    ) -> None:
        await aiosmtplib.send(
            raw,
            sender=sender,
            recipients=[to],
            hostname="127.0.0.1",
            port=self.port,
            start_tls=False,
            timeout=TIMEOUT,
        )

    async def messages(self) -> list[Message]:
        async with self.client.ctx.sessions() as session:  # type: ignore[attr-defined]
            return list((await session.exec(select(Message).order_by(Message.id))).all())

    async def count(self, model: type) -> int:
        async with self.client.ctx.sessions() as session:  # type: ignore[attr-defined]
            return (await session.exec(select(func.count()).select_from(model))).one()


async def start_inbox(
    make_client: ClientFactory, **overrides: object
) -> tuple[Inbox, SmtpListener]:
    port = free_port()
    settings = {
        "smtp_host": "127.0.0.1",
        "smtp_from": f"Rally Team <{OURS}>",
        "smtp_starttls": False,
        "inbound_smtp_port": port,
    }
    settings.update(overrides)
    client = await make_client(**settings)
    listeners = [
        s
        for s in background_services(client.ctx)  # type: ignore[attr-defined]
        if isinstance(s, SmtpListener)
    ]
    assert len(listeners) == 1
    await listeners[0].start()
    return Inbox(client, port), listeners[0]


@pytest.fixture
async def inbox(make_client: ClientFactory) -> AsyncIterator[Inbox]:
    box, listener = await start_inbox(make_client)
    try:
        yield box
    finally:
        await listener.stop()


def eml(name: str) -> bytes:
    return (TESTDATA / name).read_bytes()


# (file, address, body)
CASES = [
    ("plain.eml", "amina.otieno@example.com", "Hi team,\n\nI can canvass on Saturday"),
    ("html_only.eml", "jonas@example.de", "I'll call 20 people on Thursday.\nSee you there!"),
    ("latin1_qp.eml", "joao.araujo@example.com.br", "Olá, já estou disponível às 18h no sábado."),
    ("attachment.eml", "priya@example.in", "Here is the flyer draft for the rally."),
    ("outlook_reply.eml", "chidi.okafor@example.ng", "I\u2019m doing well, thanks."),
    ("gmail_reply.eml", "sofia.rossi@gmail.example", "Yes, I can host it at my place on Friday"),
    ("original_message.eml", "li.wei@example.cn", "Count me in for the training."),
]


@pytest.mark.parametrize(("filename", "address", "body"), CASES, ids=[c[0] for c in CASES])
async def test_mail_is_stored_as_inbound_email(
    inbox: Inbox, filename: str, address: str, body: str
) -> None:
    await inbox.deliver(eml(filename))
    [message] = await inbox.messages()
    assert (message.direction, message.channel, message.status) == ("inbound", "email", "received")
    assert message.address == address
    assert message.body.startswith(body)
    # Quoted parts and signatures are gone from the body but kept in the raw copy.
    for quoted in ("How did your week go?", "Can you host a meeting this week?", "Sent from my"):
        assert quoted not in message.body
    assert message.raw is not None and "Message-ID:" in message.raw
    assert message.email_message_id == message.provider_message_id
    async with inbox.client.ctx.sessions() as session:  # type: ignore[attr-defined]
        row = (
            await session.exec(select(SupporterAddress).where(SupporterAddress.channel == "email"))
        ).one()
    assert row.address == address


async def test_quoted_reply_stripped_and_raw_kept(inbox: Inbox) -> None:
    await inbox.deliver(eml("gmail_reply.eml"))
    [message] = await inbox.messages()
    assert message.body == "Yes, I can host it at my place on Friday \U0001f60a"
    assert message.raw is not None and "000000000000gmail" in message.raw
    assert message.subject == "Re: Can you host a meeting?"
    assert message.in_reply_to == "<rp-out-90@rally.example.org>"
    assert message.references == "<rp-out-90@rally.example.org>"


async def test_attachment_metadata_stored(inbox: Inbox) -> None:
    await inbox.deliver(eml("attachment.eml"))
    [message] = await inbox.messages()
    assert message.attachments == [
        {"content_type": "application/pdf", "filename": "flyer.pdf", "size": 52}
    ]


async def test_recipient_not_ours_is_refused_and_nothing_stored(inbox: Inbox) -> None:
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
        await inbox.deliver(eml("plain.eml"), to="someone@elsewhere.example")
    assert refused.value.recipients[0].code == 550
    assert await inbox.count(Message) == 0
    assert await inbox.count(Supporter) == 0


async def test_any_address_at_our_domain_is_accepted(inbox: Inbox) -> None:
    await inbox.deliver(eml("plain.eml"), to="Organizers@Rally.Example.org")
    assert await inbox.count(Message) == 1


async def test_configured_domains_replace_the_default(make_client: ClientFactory) -> None:
    box, listener = await start_inbox(make_client, inbound_email_domains="volunteers.example.net")
    try:
        await box.deliver(eml("plain.eml"), to="join@volunteers.example.net")
        await box.deliver(eml("latin1_qp.eml"), to=OURS)  # SMTP_FROM itself stays ours
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
            await box.deliver(eml("html_only.eml"), to="x@rally.example.org")
        assert await box.count(Message) == 2
    finally:
        await listener.stop()


async def test_same_message_id_twice_is_stored_once(inbox: Inbox) -> None:
    await inbox.deliver(eml("plain.eml"))
    await inbox.deliver(eml("plain.eml"))
    assert await inbox.count(Message) == 1
    assert await inbox.count(Supporter) == 1


async def test_sender_lower_cased_one_supporter_one_conversation(inbox: Inbox) -> None:
    first = b"From: Amina <AMINA@Example.COM>\nMessage-ID: <a1@example.com>\n\nfirst\n"
    second = b"From: amina@example.com\nMessage-ID: <a2@example.com>\n\nsecond\n"
    await inbox.deliver(first)
    await inbox.deliver(second)
    messages = await inbox.messages()
    assert [m.address for m in messages] == ["amina@example.com", "amina@example.com"]
    assert [m.body for m in messages] == ["first", "second"]
    assert await inbox.count(Supporter) == 1
    assert await inbox.count(Conversation) == 1
    async with inbox.client.ctx.sessions() as session:  # type: ignore[attr-defined]
        supporter = (await session.exec(select(Supporter))).one()
    assert supporter.name == "Amina"


async def test_auto_reply_is_accepted_but_not_stored(inbox: Inbox) -> None:
    await inbox.deliver(eml("auto_reply.eml"))  # 250: the MTA must not retry it
    assert await inbox.count(Message) == 0
    assert await inbox.count(Supporter) == 0


async def test_mail_without_usable_sender_is_refused(inbox: Inbox) -> None:
    async with aiosmtplib.SMTP(
        hostname="127.0.0.1", port=inbox.port, start_tls=False, timeout=TIMEOUT
    ) as smtp:
        await smtp.mail("")  # MAIL FROM:<> and no From address either
        await smtp.rcpt(OURS)
        with pytest.raises(aiosmtplib.SMTPDataError) as refused:
            await smtp.data(b"From: nobody\r\nSubject: hi\r\n\r\nhello\r\n")
    assert refused.value.code == 550
    assert await inbox.count(Message) == 0


async def test_oversized_mail_is_refused(make_client: ClientFactory) -> None:
    box, listener = await start_inbox(make_client)
    big = b"From: a@example.org\nMessage-ID: <big@example.org>\n\n" + (b"x" * 999 + b"\n") * 11_000
    try:
        with pytest.raises(aiosmtplib.SMTPResponseException) as refused:
            await box.deliver(big)
        assert refused.value.code == 552
        assert await box.count(Message) == 0
    finally:
        await listener.stop()


async def test_storage_failure_answers_451_and_the_retry_is_stored(
    make_client: ClientFactory,
) -> None:
    """When storing fails the MTA hears 451 (try later); its retry is stored, once."""
    client = await make_client(smtp_host="127.0.0.1", smtp_from=OURS)
    ctx = client.ctx  # type: ignore[attr-defined]
    calls: list[str] = []

    async def store_after_an_outage(message: InboundMessage | StatusUpdate) -> None:
        calls.append(message.provider_message_id)
        if len(calls) == 1:
            raise ConnectionError("database unavailable")
        await ingest(ctx, [message])

    port = free_port()
    listener = SmtpListener(
        host="127.0.0.1",
        port=port,
        policy=RecipientPolicy([OURS], []),
        on_message=store_after_an_outage,
    )
    await listener.start()
    box = Inbox(client, port)
    try:
        with pytest.raises(aiosmtplib.SMTPDataError) as refused:
            await box.deliver(eml("plain.eml"))
        assert refused.value.code == 451
        assert await box.count(Message) == 0
        await box.deliver(eml("plain.eml"))  # the MTA's retry
        await box.deliver(eml("plain.eml"))  # and a duplicate delivery
        [message] = await box.messages()
        assert message.address == "amina.otieno@example.com"
        assert len(calls) == 3
    finally:
        await listener.stop()


async def test_listener_is_off_without_a_port(make_client: ClientFactory) -> None:
    client = await make_client(smtp_host="127.0.0.1", smtp_from=OURS)
    services = background_services(client.ctx)  # type: ignore[attr-defined]
    assert not [s for s in services if isinstance(s, SmtpListener)]


async def test_email_webhook_is_refused(make_client: ClientFactory) -> None:
    client = await make_client(smtp_host="127.0.0.1", smtp_from=OURS)
    response = await client.post("/webhooks/email", content=eml("plain.eml"))
    assert response.status_code == 403
    async with client.ctx.sessions() as session:  # type: ignore[attr-defined]
        assert (await session.exec(select(func.count()).select_from(Message))).one() == 0
