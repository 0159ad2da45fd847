"""The e2e org reading a real IMAP mailbox (Dovecot, channels/email/dovecot.py) as
`serve` does when IMAP_HOST is set, and a person's mail client appending to that mailbox."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from imapclient import IMAPClient

from channels.email.dovecot import Dovecot, dovecot_available
from channels.email.fake import FakeSmtpServer
from gateway.background import background_services
from gateway.imap_poller import ImapPoller
from tests.conftest import FakeClock
from tests.e2e.harness import MakeClient, Org

OURS = "team@rally.example.org"
TIMEOUT = 20.0
PROCESSED = "Rallypoint.Processed"  # "Rallypoint/Processed" with Dovecot's Maildir separator


def running_dovecot(capability: str | None = None, **tls: Path) -> Iterator[Dovecot]:
    if not dovecot_available():
        pytest.fail("Dovecot is not installed: apt-get install dovecot-imapd (.ci/run does)")
    server = Dovecot(capability=capability, **tls)
    server.start()
    try:
        yield server
    finally:
        server.stop()


class Mailbox:
    """One user's mailbox on the server, seen through a mail client (IMAPClient)."""

    def __init__(self, server: Dovecot, port: int | None = None) -> None:
        self.server = server
        self.user = "u" + uuid.uuid4().hex[:12]
        self.password = server.add_user(self.user)
        self.port = port or server.port

    def _client(self) -> IMAPClient:
        client = IMAPClient("127.0.0.1", port=self.server.port, ssl=False, timeout=TIMEOUT)
        client.login(self.user, self.password)
        return client

    def _append(self, raws: list[bytes]) -> None:
        client = self._client()
        try:
            for raw in raws:
                client.append("INBOX", raw)
        finally:
            client.logout()

    async def append(self, *raws: bytes) -> None:
        await asyncio.to_thread(self._append, list(raws))

    def _count(self, folder: str, criteria: list[str]) -> int:
        client = self._client()
        try:
            if not client.folder_exists(folder):
                return 0
            client.select_folder(folder, readonly=True)
            return len(client.search(criteria))
        finally:
            client.logout()

    async def count(self, folder: str = "INBOX", *criteria: str) -> int:
        return await asyncio.to_thread(self._count, folder, list(criteria) or ["ALL"])

    def _capabilities(self) -> set[str]:
        client = self._client()
        try:
            return {c.decode().upper() for c in client.capabilities()}
        finally:
            client.logout()

    async def capabilities(self) -> set[str]:
        """What the server announces to this user once logged in."""
        return await asyncio.to_thread(self._capabilities)

    def _copy_back(self) -> None:
        client = self._client()
        try:
            client.select_folder(PROCESSED)
            client.copy(client.search(["ALL"]), "INBOX")
        finally:
            client.logout()

    async def copy_back(self) -> None:
        """Put processed mail back in the INBOX: as if the reader had crashed after storing
        it and before moving it."""
        await asyncio.to_thread(self._copy_back)

    def settings(self, **overrides: Any) -> dict[str, Any]:
        values: dict[str, Any] = {
            "imap_host": "127.0.0.1",
            "imap_port": self.port,
            "imap_username": self.user,
            "imap_password": self.password,
            "imap_tls": False,
            "imap_poll_seconds": 3600,  # IDLE or nothing, unless a test says otherwise
        }
        values.update(overrides)
        return values


async def start_imap_org(
    make_client: MakeClient, clock: FakeClock, smtp: FakeSmtpServer, box: Mailbox, **settings: Any
) -> Org:
    return await Org.start(
        make_client,
        clock,
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_from=f"Rally Team <{OURS}>",
        smtp_starttls=False,
        **box.settings(**settings),
    )


def new_poller(org: Org) -> ImapPoller:
    """The reader `serve` would run for this org (not started), retrying at once."""
    [poller] = [s for s in background_services(org.ctx) if isinstance(s, ImapPoller)]
    poller.backoff_first = 0.01
    return poller


async def processed(poller: ImapPoller, count: int) -> None:
    await asyncio.wait_for(poller.wait_processed(count), TIMEOUT)
