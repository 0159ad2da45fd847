"""One session with the IMAP mailbox that receives our mail (IMAP_HOST): which mail waits,
its bytes, and marking it processed. Blocking (IMAPClient over the standard library's
imaplib): the caller runs each call in a thread, one at a time.

Processed mail leaves the waiting set the best way the server's CAPABILITY allows:
- MOVE (RFC 6851): moved to the processed mailbox in one command;
- UIDPLUS (RFC 4315): copied there, flagged \\Deleted, and only those UIDs expunged;
- neither: flagged \\Seen and with the keyword `$RallypointProcessed`, left where it is
  (a plain EXPUNGE would also remove mail the owner deleted and did not expunge).
Waiting mail is what is neither \\Deleted nor has that keyword, oldest first.
"""

from __future__ import annotations

import logging
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError

from channels.email.imap_config import ImapConfig
from channels.email.inbound import return_path
from channels.email.quiet_log import quiet_imapclient_log

log = logging.getLogger(__name__)

__all__ = ["FetchedMail", "ImapError", "ImapMailbox", "LoginError", "uid_set"]

PROCESSED_KEYWORD = "$RallypointProcessed"
WAITING = ["UNDELETED", "UNKEYWORD", PROCESSED_KEYWORD]
IDLE_MAX_SECONDS = 29 * 60  # RFC 2177: re-issue IDLE before 30 minutes of inactivity
BODY = b"BODY[]"

# What a lost or refused connection raises: the caller reconnects with a backoff.
ImapError = (OSError, IMAPClientError, ssl.SSLError, EOFError)


@dataclass(frozen=True)
class FetchedMail:
    uid: int
    raw: bytes
    envelope_from: str | None  # from Return-Path; None when the server wrote none


def uid_set(uids: Sequence[int]) -> str:
    """`uids` as an IMAP sequence set, runs as ranges ("3:7,9"): each range holds exactly
    the consecutive UIDs given, so it names no other mail."""
    ordered = sorted(set(uids))
    runs: list[str] = []
    start = previous = ordered[0]
    for uid in [*ordered[1:], None]:
        if uid is not None and uid == previous + 1:
            previous = uid
            continue
        runs.append(str(start) if start == previous else f"{start}:{previous}")
        if uid is not None:
            start = previous = uid
    return ",".join(runs)


class ImapMailbox:
    """A logged-in session with `config.mailbox` selected (see `open`)."""

    def __init__(self, config: ImapConfig) -> None:
        self.config = config
        self._client: IMAPClient | None = None
        self.strategy = "flag"  # "move", "copy" or "flag": see the module docstring
        self.supports_idle = False
        self.processed = ""  # the processed mailbox's name with the server's separator

    def open(self) -> None:
        """Connect, log in, create the processed mailbox if missing, select the mailbox."""
        quiet_imapclient_log()
        config = self.config
        context = config.ssl_context
        if config.tls and context is None:
            context = ssl.create_default_context()
        client = IMAPClient(
            config.host,
            port=config.port,
            ssl=config.tls,
            ssl_context=context,
            timeout=config.timeout,
        )
        self._client = client
        client.login(config.username, config.password)
        capabilities = {c.upper() for c in client.capabilities()}
        self.supports_idle = b"IDLE" in capabilities
        self.strategy = (
            "move" if b"MOVE" in capabilities else "copy" if b"UIDPLUS" in capabilities else "flag"
        )
        if self.strategy != "flag":
            self.processed = self._processed_name(client)
            if not client.folder_exists(self.processed):
                client.create_folder(self.processed)
                log.info("imap: created the processed mailbox")
        client.select_folder(config.mailbox)

    def _processed_name(self, client: IMAPClient) -> str:
        # IMAP_PROCESSED_MAILBOX uses "/" between levels; servers use their own separator.
        [(_, separator, _)] = client.list_folders("", "") or [((), b"/", "")]
        sep = separator.decode() if isinstance(separator, bytes) else str(separator or "/")
        return sep.join(part for part in self.config.processed_mailbox.split("/") if part)

    @property
    def client(self) -> IMAPClient:
        if self._client is None:
            raise ConnectionError("the IMAP session is not open")
        return self._client

    def waiting(self) -> list[int]:
        """UIDs of the mail not processed yet, oldest first."""
        return sorted(int(uid) for uid in self.client.search(WAITING))

    def fetch(self, uids: Sequence[int]) -> list[FetchedMail]:
        """The whole of each mail (BODY.PEEK[]: fetching does not mark it \\Seen)."""
        if not uids:
            return []
        found = self.client.fetch(list(uids), ["BODY.PEEK[]"])
        mails: list[FetchedMail] = []
        for uid in uids:
            raw = found.get(uid, {}).get(BODY)
            if isinstance(raw, bytes):  # expunged meanwhile by someone else: nothing to do
                mails.append(FetchedMail(uid, raw, return_path(raw)))
        return mails

    def mark_processed(self, uids: Sequence[int]) -> None:
        """Take `uids` out of the waiting set (move, copy and expunge, or flag)."""
        if not uids:
            return
        client, messages = self.client, uid_set(uids)
        if self.strategy == "move":
            client.move(messages, self.processed)
        elif self.strategy == "copy":
            client.copy(messages, self.processed)
            client.add_flags(messages, [b"\\Deleted"], silent=True)
            client.uid_expunge(messages)
        else:
            client.add_flags(messages, [b"\\Seen", PROCESSED_KEYWORD.encode()], silent=True)

    def idle_start(self) -> None:
        """Enter IDLE (the server must support it: see `supports_idle`)."""
        self.client.idle()

    def idle_wait(self, timeout: float) -> bool:
        """Wait in IDLE up to `timeout` seconds for news of the mailbox, then leave IDLE.
        True when the server told of something (new mail, most likely)."""
        client = self.client
        remaining = min(timeout, IDLE_MAX_SECONDS)
        news = client.idle_check(timeout=remaining)
        # "* OK Still here" is a keep-alive, not news.
        changed = any(not (isinstance(r[0], bytes) and r[0].upper() == b"OK") for r in news)
        client.idle_done()
        return changed

    def interrupt(self) -> None:
        """Shut the connection from another thread: a blocked IDLE wait returns at once
        and the session's next command fails."""
        client = self._client
        if client is None:
            return
        try:
            client.socket().shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already closed

    def close(self) -> None:
        """Log out if the connection still works; close it either way."""
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.logout()
        except ImapError:
            try:
                client.shutdown()
            except ImapError:
                pass
