"""IMAP over implicit TLS (IMAP_TLS=true, the default): the reader checks the server's
certificate, reads the mailbox when it is trusted, and reads nothing when it is not."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Iterator

import pytest
import trustme

from channels.email.dovecot import Dovecot
from channels.email.imap_config import ImapConfig
from gateway.imap_poller import Events, ImapPoller
from tests.e2e.imap import Mailbox, processed, running_dovecot
from tests.e2e.test_email_imap import mail


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def tls_dovecot(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dovecot]:
    folder = tmp_path_factory.mktemp("imap-tls")
    cert = ca.issue_cert("127.0.0.1")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    yield from running_dovecot(cert_file=cert_file, key_file=key_file)


def tls_config(server: Dovecot, box: Mailbox, context: ssl.SSLContext | None) -> ImapConfig:
    return ImapConfig(
        host="127.0.0.1",
        port=server.tls_port,
        username=box.user,
        password=box.password,
        tls=True,
        poll_seconds=3600,
        ssl_context=context,
    )


async def test_trusted_certificate_mail_is_read(ca: trustme.CA, tls_dovecot: Dovecot) -> None:
    box = Mailbox(tls_dovecot)
    await box.append(mail("ana@example.net", "Over TLS", "tls-1"))
    stored: list[Events] = []

    async def store(events: Events) -> None:
        stored.append(events)

    context = ssl.create_default_context()
    ca.configure_trust(context)
    poller = ImapPoller(tls_config(tls_dovecot, box, context), store)
    await poller.start()
    try:
        await processed(poller, 1)
    finally:
        await poller.stop()
    [[message]] = stored
    assert message.body == "Over TLS"  # type: ignore[union-attr]
    assert await box.count("INBOX") == 0


async def test_untrusted_certificate_reads_nothing(
    tls_dovecot: Dovecot, caplog: pytest.LogCaptureFixture
) -> None:
    box = Mailbox(tls_dovecot)
    await box.append(mail("ana@example.net", "Not for a stranger", "tls-2"))
    stored: list[Events] = []

    async def store(events: Events) -> None:
        stored.append(events)

    # The system's trust store, which does not know the test CA.
    poller = ImapPoller(tls_config(tls_dovecot, box, None), store, backoff_first=0.01)
    caplog.set_level(logging.WARNING, logger="gateway.imap_poller")
    await poller.start()
    try:
        await asyncio.wait_for(poller.wait_failures(3), 20)
    finally:
        await poller.stop()
    assert stored == []
    assert poller.connections == 0
    assert any("SSLCertVerificationError" in r.getMessage() for r in caplog.records)
    assert await box.count("INBOX") == 1
