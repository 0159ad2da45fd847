"""Email's send-contract rig: the adapter, built by the registry, logs in to a real SMTP
server on loopback (aiosmtpd, channels/email/fake.py) that answers each row.

An answer is an SMTP reply line the server gives to RCPT TO, or one of: "accept",
"auth_refused" (the server knows another password), "closed" (nothing listens on the
port), "hung" (the server never greets)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, asynccontextmanager, contextmanager
from dataclasses import replace

import httpx

from channels.base import (
    ChannelAdapter,
    ChannelMisconfigured,
    InvalidRecipient,
    OutboundMessage,
    ProviderUnavailable,
    SendError,
    Throttled,
)
from channels.email import EmailConfig
from channels.email.fake import FakeSmtpServer, HungSmtpServer, free_port
from channels.registry import ChannelConfigs
from tests.channels.send_contract import SendCase, b64, registered, sasl_plain

OURS = "team@rally.example.org"
SEND_TO = "amina@example.com"
SMTP_USER = "mailer@rally.example.org"
SMTP_PASSWORD = "smtp-Pa55word-contract-Qz8"
# Short, so that the hung server costs the suite a fraction of a second.
TIMEOUT = 0.3
MESSAGE_ID = r"<[^<>@\s]+@rally\.example\.org>"

_ROWS: list[SendCase[str]] = [
    SendCase("250 accepted", "accept", result_id=MESSAGE_ID),
    SendCase("421 too busy", "421 4.7.0 Try again later, closing connection", Throttled, "421"),
    SendCase("450 4.2.1 receiving too fast", "450 4.2.1 Rate limited, slow down", Throttled, "450"),
    SendCase("451 local error", "451 4.3.0 Try again later", ProviderUnavailable, "451"),
    SendCase("452 no storage", "452 4.3.1 Insufficient storage", ProviderUnavailable, "452"),
    SendCase("connection refused", "closed", ProviderUnavailable),
    SendCase("no greeting: timeout", "hung", ProviderUnavailable),
    SendCase("550 no such user", "550 5.1.1 No such user", InvalidRecipient, "550"),
    SendCase("551 user not local", "551 5.1.6 User has moved", InvalidRecipient, "551"),
    SendCase("553 mailbox name invalid", "553 5.1.3 Bad address syntax", InvalidRecipient, "553"),
    SendCase("554 rejected by policy", "554 5.7.1 Rejected by policy", SendError, "554"),
    SendCase("535 login refused", "auth_refused", ChannelMisconfigured, "535"),
    SendCase("unknown 5xx", "571 5.7.1 Delivery not authorized", SendError, "571"),
]
# The server keeps a refusal for the address (and a closed port stays closed).
SEND_CASES = [replace(case, answers_once=False) for case in _ROWS]


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


class EmailSendRig:
    provider = "email"
    # The password, and its AUTH PLAIN and AUTH LOGIN encodings as they cross the wire.
    secrets = (SMTP_PASSWORD, sasl_plain(SMTP_USER, SMTP_PASSWORD), b64(SMTP_PASSWORD))
    cases = SEND_CASES

    def message(self) -> OutboundMessage:
        return OutboundMessage(1, "email", SEND_TO, "Rally at 10: the secret plan")

    @asynccontextmanager
    async def open(self, answer: str) -> AsyncIterator[ChannelAdapter]:
        with self._server(answer) as port:
            config = EmailConfig(
                "127.0.0.1",
                f"Rally Team <{OURS}>",
                port=port,
                username=SMTP_USER,
                password=SMTP_PASSWORD,
                starttls=False,
                timeout=TIMEOUT,
            )
            # Media to attach are fetched over HTTP: a file host answers every URL.
            files = httpx.MockTransport(
                lambda _: httpx.Response(200, headers={"content-type": "image/png"}, content=PNG)
            )
            async with registered(ChannelConfigs(email=config), "email", files) as adapter:
                yield adapter

    @contextmanager
    def _server(self, answer: str) -> Iterator[int]:
        if answer == "closed":
            yield free_port()
            return
        with ExitStack() as stack:
            if answer == "hung":
                yield stack.enter_context(HungSmtpServer()).port
                return
            password = "another-password" if answer == "auth_refused" else SMTP_PASSWORD
            smtp = stack.enter_context(FakeSmtpServer(credentials=(SMTP_USER, password)))
            if answer[:3].isdigit():
                smtp.refuse(SEND_TO, answer)
            yield smtp.port
            if answer != "accept":
                assert smtp.messages == []  # a refused recipient gets no mail
