"""Inbound mail from a hosted mailbox over IMAP, against a real server (Dovecot): mail a
client appends to the INBOX becomes a supporter's message exactly as mail to the SMTP
listener does, is moved out of the INBOX, and is stored once whatever restarts or drops."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlmodel import select

from channels.email.dovecot import Dovecot
from channels.email.fake import FakeSmtpServer
from storage.models import Message, Supporter
from tests.conftest import FakeClock
from tests.e2e.harness import MakeClient, Org
from tests.e2e.imap import (
    PROCESSED,
    Mailbox,
    new_poller,
    processed,
    running_dovecot,
    start_imap_org,
)
from tests.e2e.imap_proxy import DroppingProxy
from tests.e2e.test_email_reply_languages import HEADERS, email_supporter, reply

TESTDATA = Path(__file__).parents[2] / "channels" / "email" / "testdata"
SECRET_BODY = "meet-at-the-east-gate-7731"


def mail(sender: str, body: str, message_id: str) -> bytes:
    return (
        f"From: <{sender}>\r\nTo: team@rally.example.org\r\nSubject: Saturday\r\n"
        f"Message-ID: <{message_id}@example.net>\r\n\r\n{body}\r\n"
    ).encode()


async def count(org: Org, model: type) -> int:
    async with org.ctx.sessions() as session:
        return (await session.exec(select(func.count()).select_from(model))).one()


async def inbound_bodies(org: Org) -> list[str]:
    async with org.ctx.sessions() as session:
        rows = await session.exec(
            select(Message).where(Message.direction == "inbound").order_by(Message.id)
        )
        return [row.body or "" for row in rows.all()]


@pytest.fixture(scope="module")
def dovecot() -> Iterator[Dovecot]:
    yield from running_dovecot()


@pytest.fixture
async def smtp() -> AsyncIterator[FakeSmtpServer]:
    with FakeSmtpServer() as server:
        yield server


async def test_mail_becomes_a_message_reply_stripped_and_moved_once(
    make_client: MakeClient,
    clock: FakeClock,
    smtp: FakeSmtpServer,
    dovecot: Dovecot,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("imapclient", "imapclient.imaplib", "channels", "routing", "gateway"):
        caplog.set_level(logging.DEBUG, logger=name)
    box = Mailbox(dovecot)
    await box.append(
        (TESTDATA / "gmail_reply.eml").read_bytes(),
        mail("hidden.4417@example.org", SECRET_BODY, "secret-1"),
    )
    org = await start_imap_org(make_client, clock, smtp, box)
    poller = new_poller(org)
    caplog.clear()  # the test's own mail client logged in above
    await poller.start()
    try:
        await processed(poller, 2)
    finally:
        await poller.stop()

    [convo, _] = (await org.api("GET", "/conversations"))["items"]
    bodies = await inbound_bodies(org)
    assert bodies == ["Yes, I can host it at my place on Friday \U0001f60a", SECRET_BODY]
    assert convo["id"]
    assert await box.count("INBOX") == 0
    assert await box.count(PROCESSED) == 2
    lines = [r.getMessage() + " " + (r.exc_text or "") for r in caplog.records]
    assert [line for line in lines if "imap" in line.lower()], "the capture saw the reader"
    leaks = [line for line in lines if SECRET_BODY in line or "hidden.4417" in line]
    assert not leaks
    assert not [line for line in lines if box.password in line or box.user in line]

    # A crash after storing and before moving leaves the mail waiting: the next reader
    # takes it out of the INBOX again and stores nothing twice.
    await box.copy_back()
    again = new_poller(org)
    await again.start()
    try:
        await processed(again, 2)
    finally:
        await again.stop()
    assert await inbound_bodies(org) == bodies
    assert await box.count("INBOX") == 0


async def test_stop_in_french_above_a_quote_header_opts_out(
    make_client: MakeClient, clock: FakeClock, smtp: FakeSmtpServer, dovecot: Dovecot
) -> None:
    box = Mailbox(dovecot)
    org = await start_imap_org(make_client, clock, smtp, box)
    await org.team("Canvassing")
    ana = await email_supporter(org, "ana@example.net")
    await box.append(reply("ana@example.net", "STOP", HEADERS["gmail-fr"]))
    poller = new_poller(org)
    await poller.start()
    try:
        await processed(poller, 1)
    finally:
        await poller.stop()
    await org.dispatch()
    found = await org.api("GET", f"/supporters/{ana['id']}")
    assert found["opted_out"] is True
    assert await inbound_bodies(org) == ["STOP"]


async def test_a_bounce_never_creates_a_supporter(
    make_client: MakeClient, clock: FakeClock, smtp: FakeSmtpServer, dovecot: Dovecot
) -> None:
    box = Mailbox(dovecot)
    # What the delivering server leaves in the mailbox: the null sender in Return-Path.
    bounces = [
        b"Return-Path: <>\r\n" + (TESTDATA / name).read_bytes()
        for name in ("bounce_postfix_user_unknown.eml", "bounce_qmail.eml", "auto_reply.eml")
    ]
    await box.append(*bounces)
    org = await start_imap_org(make_client, clock, smtp, box)
    poller = new_poller(org)
    await poller.start()
    try:
        await processed(poller, 3)
    finally:
        await poller.stop()
    assert await count(org, Supporter) == 0
    assert await count(org, Message) == 0
    assert await box.count("INBOX") == 0  # reports are taken out of the way too


async def test_idle_delivers_new_mail_without_waiting_for_the_poll(
    make_client: MakeClient, clock: FakeClock, smtp: FakeSmtpServer, dovecot: Dovecot
) -> None:
    box = Mailbox(dovecot)
    org = await start_imap_org(make_client, clock, smtp, box, imap_poll_seconds=3600)
    poller = new_poller(org)
    await poller.start()
    try:
        await asyncio.wait_for(poller.idling.wait(), 20)
        await box.append(mail("ana@example.net", "On my way", "idle-1"))
        # Only IDLE can bring it: the next poll is an hour away.
        await processed(poller, 1)
    finally:
        await poller.stop()
    assert await inbound_bodies(org) == ["On my way"]
    assert poller.connections == 1


async def test_dropped_between_storing_and_moving_nothing_lost_nothing_twice(
    make_client: MakeClient, clock: FakeClock, smtp: FakeSmtpServer, dovecot: Dovecot
) -> None:
    proxy = DroppingProxy(dovecot.port)
    await proxy.start()
    box = Mailbox(dovecot, port=proxy.port)
    await box.append(*(mail("ana@example.net", f"Note {i}", f"drop-{i}") for i in range(3)))
    proxy.drop_on = b"UID MOVE"  # the mail is stored; the move never reaches the server
    org = await start_imap_org(make_client, clock, smtp, box)
    poller = new_poller(org)
    await poller.start()
    try:
        await processed(poller, 3)
    finally:
        await poller.stop()
        await proxy.stop()
    assert proxy.drops == 1
    assert poller.connections == 2
    assert await inbound_bodies(org) == ["Note 0", "Note 1", "Note 2"]
    assert await box.count("INBOX") == 0


async def test_server_drops_the_session_while_idling_reconnects(
    make_client: MakeClient, clock: FakeClock, smtp: FakeSmtpServer, dovecot: Dovecot
) -> None:
    box = Mailbox(dovecot)
    org = await start_imap_org(make_client, clock, smtp, box)
    poller = new_poller(org)
    await poller.start()
    try:
        await asyncio.wait_for(poller.idling.wait(), 20)
        await asyncio.to_thread(dovecot.kick, box.user)
        await asyncio.wait_for(poller.wait_failures(1), 20)  # it noticed
        await box.append(mail("ana@example.net", "Still there?", "kick-1"))
        await processed(poller, 1)
    finally:
        await poller.stop()
    assert poller.connections == 2
    assert await inbound_bodies(org) == ["Still there?"]


async def test_a_wrong_password_is_retried_and_said_plainly(
    make_client: MakeClient,
    clock: FakeClock,
    smtp: FakeSmtpServer,
    dovecot: Dovecot,
    caplog: pytest.LogCaptureFixture,
) -> None:
    box = Mailbox(dovecot)
    await box.append(mail("ana@example.net", "Hello?", "wrong-1"))
    org = await start_imap_org(make_client, clock, smtp, box, imap_password="not-the-password")
    poller = new_poller(org)
    caplog.set_level(logging.WARNING, logger="gateway.imap_poller")
    await poller.start()
    try:
        await asyncio.wait_for(poller.wait_failures(2), 20)  # retried, not given up
    finally:
        await poller.stop()
    assert poller.connections == 0
    assert await count(org, Message) == 0
    assert await box.count("INBOX") == 1
    warnings = [r.getMessage() for r in caplog.records]
    assert any("check IMAP_USERNAME and IMAP_PASSWORD" in w for w in warnings), warnings
    assert not [w for w in warnings if "not-the-password" in w]
