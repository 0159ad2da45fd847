"""A capturing SMTP server on loopback for tests and demos (real SMTP, no mocks).

    with FakeSmtpServer() as smtp:
        smtp.refuse("gone@example.org", "550 5.1.1 No such user")
        ... send to 127.0.0.1:smtp.port ...
        smtp.messages[0].message["Subject"]

Refusals are scripted per recipient (any SMTP reply line, e.g. "451 4.3.0 Try later").
`credentials=(user, password)` makes it require AUTH (PLAIN/LOGIN, no TLS needed).
`HungSmtpServer` accepts connections and never greets: a server that stopped answering.
"""

from __future__ import annotations

import email
import email.policy
import socket
import threading
import warnings
from dataclasses import dataclass
from email.message import EmailMessage
from types import TracebackType
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

READY_TIMEOUT = 5.0


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class HungSmtpServer:
    """A listening socket on loopback that never accepts: the kernel completes the TCP
    handshake, and the client then waits for a greeting that never comes."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind((host, 0))
        self._socket.listen(8)
        self.port = int(self._socket.getsockname()[1])

    def __enter__(self) -> HungSmtpServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._socket.close()


@dataclass(frozen=True)
class ReceivedMail:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    content: bytes
    message: EmailMessage


class _CapturingHandler:
    def __init__(self, fake: FakeSmtpServer) -> None:
        self.fake = fake

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook name)
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        refusal = self.fake.refusals.get(address.lower())
        if refusal is not None:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        content = bytes(envelope.content)
        parsed = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        with self.fake.lock:
            self.fake.received.append(
                ReceivedMail(envelope.mail_from, tuple(envelope.rcpt_tos), content, parsed)
            )
        return "250 Message accepted for delivery"


class FakeSmtpServer:
    """An aiosmtpd Controller on 127.0.0.1 (a free port) that keeps what it receives."""

    def __init__(
        self, *, host: str = "127.0.0.1", credentials: tuple[str, str] | None = None
    ) -> None:
        self.host = host
        self.port = free_port(host)
        self.refusals: dict[str, str] = {}
        self.received: list[ReceivedMail] = []
        self.lock = threading.Lock()
        self.credentials = credentials
        kwargs: dict[str, Any] = {}
        if credentials is not None:
            # Plain AUTH over loopback is the point of this fake; aiosmtpd warns about it.
            warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS")
            kwargs = {
                "authenticator": self._authenticate,
                "auth_require_tls": False,
                "auth_required": True,
            }
        self._controller = Controller(
            _CapturingHandler(self),
            hostname=host,
            port=self.port,
            ready_timeout=READY_TIMEOUT,
            **kwargs,
        )

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and self.credentials is not None
            and (auth_data.login.decode(), auth_data.password.decode()) == self.credentials
        )
        return AuthResult(success=ok, handled=False)

    def refuse(self, address: str, reply: str = "550 5.1.1 No such user") -> None:
        """Answer RCPT TO:<address> with `reply` (a full SMTP reply line)."""
        self.refusals[address.lower()] = reply

    @property
    def messages(self) -> list[ReceivedMail]:
        with self.lock:
            return list(self.received)

    def start(self) -> FakeSmtpServer:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop(no_assert=True)

    def __enter__(self) -> FakeSmtpServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
