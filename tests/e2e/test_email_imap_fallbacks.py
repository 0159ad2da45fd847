"""Servers without MOVE or IDLE (Dovecot told to announce less): processed mail is copied
and expunged by UID (UIDPLUS), or flagged with a keyword and left in place, and new mail
is found by polling every IMAP_POLL_SECONDS."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from channels.email.dovecot import Dovecot
from channels.email.fake import FakeSmtpServer
from tests.conftest import FakeClock
from tests.e2e.harness import MakeClient
from tests.e2e.imap import (
    PROCESSED,
    Mailbox,
    new_poller,
    processed,
    running_dovecot,
    start_imap_org,
)
from tests.e2e.test_email_imap import inbound_bodies, mail

POLL_SECONDS = 0.05  # the only way new mail is found on these servers


@pytest.fixture(scope="module")
def uidplus_only() -> Iterator[Dovecot]:
    yield from running_dovecot(capability="IMAP4rev1 LITERAL+ UIDPLUS")


@pytest.fixture(scope="module")
def bare_imap() -> Iterator[Dovecot]:
    yield from running_dovecot(capability="IMAP4rev1 LITERAL+")


@pytest.fixture
async def smtp() -> AsyncIterator[FakeSmtpServer]:
    with FakeSmtpServer() as server:
        yield server


async def test_without_move_copies_and_expunges_and_polls(
    make_client: MakeClient, clock: FakeClock, smtp: FakeSmtpServer, uidplus_only: Dovecot
) -> None:
    box = Mailbox(uidplus_only)
    assert {"UIDPLUS"} <= await box.capabilities()
    assert not {"MOVE", "IDLE"} & await box.capabilities()
    await box.append(
        mail("ana@example.net", "One", "copy-1"), mail("bo@example.net", "Two", "copy-2")
    )
    org = await start_imap_org(make_client, clock, smtp, box, imap_poll_seconds=POLL_SECONDS)
    poller = new_poller(org)
    await poller.start()
    try:
        await processed(poller, 2)
        await box.append(mail("ana@example.net", "Three", "copy-3"))
        await processed(poller, 3)
    finally:
        await poller.stop()
    assert await inbound_bodies(org) == ["One", "Two", "Three"]
    assert await box.count("INBOX") == 0  # expunged, not just flagged
    assert await box.count(PROCESSED) == 3


async def test_without_move_or_uidplus_flags_and_reads_each_mail_once(
    make_client: MakeClient, clock: FakeClock, smtp: FakeSmtpServer, bare_imap: Dovecot
) -> None:
    box = Mailbox(bare_imap)
    assert not {"MOVE", "UIDPLUS", "IDLE"} & await box.capabilities()
    await box.append(mail("ana@example.net", "One", "flag-1"))
    org = await start_imap_org(make_client, clock, smtp, box, imap_poll_seconds=POLL_SECONDS)
    poller = new_poller(org)
    await poller.start()
    try:
        await processed(poller, 1)
    finally:
        await poller.stop()
    assert await box.count("INBOX", "SEEN", "KEYWORD", "$RallypointProcessed") == 1
    assert await box.count(PROCESSED) == 0  # left in place: nothing was copied

    # A restarted reader leaves the flagged mail alone and reads only the new one.
    await box.append(mail("ana@example.net", "Two", "flag-2"))
    again = new_poller(org)
    await again.start()
    try:
        await processed(again, 1)
    finally:
        await again.stop()
    assert again.processed == 1
    assert await inbound_bodies(org) == ["One", "Two"]
    assert await box.count("INBOX", "UNKEYWORD", "$RallypointProcessed") == 0
