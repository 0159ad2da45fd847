"""What the IMAP mailbox reader needs to know, built by whoever reads the environment."""

from __future__ import annotations

import ssl
from dataclasses import dataclass

DEFAULT_PROCESSED = "Rallypoint/Processed"


@dataclass(frozen=True)
class ImapConfig:
    host: str
    username: str
    password: str
    port: int = 993
    tls: bool = True  # implicit TLS (port 993); False only for a server on loopback
    mailbox: str = "INBOX"
    # Where processed mail is moved, "/" between levels whatever the server's separator.
    processed_mailbox: str = DEFAULT_PROCESSED
    poll_seconds: float = 60.0
    timeout: float = 30.0  # seconds one command (connect and login included) may take
    # Tests trust their own certificate; None: the system's trust store.
    ssl_context: ssl.SSLContext | None = None
