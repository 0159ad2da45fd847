"""The inbound SMTP listener: mail to our addresses becomes InboundMessage values, and
bounces of our own mail become StatusUpdate values.

aiosmtpd runs in its own thread and event loop (a Controller); each accepted message is
handed to `on_message` on the application's loop, and the sending MTA hears 250 only
after that callback returned (the message is committed). A failure answers 451 so the
MTA retries later: nothing is lost, and the retry dedupes on the Message-ID.
Each inbound message's sender is checked as `sender_auth` says (sender_auth.py).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable, Iterable
from email.utils import parseaddr
from typing import Any

from aiosmtpd.controller import Controller

from channels.base import InboundMessage, StatusUpdate
from channels.email.inbound import CheckLater, Unreadable, UnusableSender, read_mail
from channels.email.quiet_log import quiet_aiosmtpd_log
from channels.email.sender_auth import SenderAuth

log = logging.getLogger(__name__)

OnMessage = Callable[[InboundMessage | StatusUpdate], Awaitable[None]]

MAX_MESSAGE_BYTES = 10 * 1024 * 1024  # larger mail is refused with 552
CALLBACK_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0

REPLY_OK = "250 2.0.0 Message accepted"
REPLY_IGNORED = "250 2.0.0 Accepted (automatic reply ignored)"
REPLY_NOT_OURS = "550 5.1.1 Recipient not accepted here"
REPLY_NO_SENDER = "550 5.1.7 No usable sender address"
REPLY_UNPARSEABLE = "554 5.6.0 Message could not be read"
REPLY_TRY_LATER = "451 4.3.0 Temporary failure, please try again later"
REPLY_CHECK_LATER = "451 4.4.3 Could not check the sender now, please try again later"


class RecipientPolicy:
    """Mail to the sending address (SMTP_FROM) or to any address at our domains is ours."""

    def __init__(self, own_addresses: Iterable[str], domains: Iterable[str]) -> None:
        self.addresses = {a.lower() for a in (parseaddr(x)[1] for x in own_addresses) if a}
        self.domains = {d.strip().lower().lstrip("@") for d in domains if d.strip()}

    def accepts(self, address: str) -> bool:
        address = address.strip().lower()
        if address in self.addresses:
            return True
        local, _, domain = address.rpartition("@")
        return bool(local) and domain in self.domains


class InboundSmtpHandler:
    """aiosmtpd hooks; `loop` is the application's loop, where `on_message` must run."""

    def __init__(
        self,
        policy: RecipientPolicy,
        on_message: OnMessage,
        loop: asyncio.AbstractEventLoop,
        callback_timeout: float = CALLBACK_TIMEOUT,
        sender_auth: SenderAuth | None = None,
    ) -> None:
        self.policy = policy
        self.on_message = on_message
        self.loop = loop
        self.callback_timeout = callback_timeout
        self.sender_auth = sender_auth or SenderAuth()

    async def _deliver(self, events: list[InboundMessage | StatusUpdate]) -> None:
        for event in events:
            await self.on_message(event)

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook name)
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if not self.policy.accepts(address):
            log.info("inbound smtp: refused a recipient outside our domains")
            return REPLY_NOT_OURS
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        try:
            events = await read_mail(bytes(envelope.content), envelope.mail_from, self.sender_auth)
        except UnusableSender:
            return REPLY_NO_SENDER
        except Unreadable:
            log.exception("inbound smtp: could not parse a message")
            return REPLY_UNPARSEABLE
        except CheckLater as exc:
            log.warning("inbound smtp: sender check deferred (%s); asking to retry", exc)
            return REPLY_CHECK_LATER
        if not events:
            log.info("inbound smtp: automatic reply or report ignored")
            return REPLY_IGNORED
        try:
            future = asyncio.run_coroutine_threadsafe(self._deliver(events), self.loop)
            await asyncio.wait_for(asyncio.wrap_future(future), self.callback_timeout)
        except Exception:
            log.exception("inbound smtp: storing a message failed; asking the sender to retry")
            return REPLY_TRY_LATER
        return REPLY_OK


def server_tls_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    """A TLS server context (TLS 1.2 or newer) from a PEM certificate chain and key."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # An empty password: an encrypted key fails here instead of prompting on the terminal.
    context.load_cert_chain(cert_file, key_file, password=b"")
    return context


class SmtpListener:
    """A background service (start/stop) running the inbound SMTP server. With a
    `tls_context` it offers STARTTLS; `require_tls` then refuses MAIL before it (530)."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        policy: RecipientPolicy,
        on_message: OnMessage,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        callback_timeout: float = CALLBACK_TIMEOUT,
        tls_context: ssl.SSLContext | None = None,
        require_tls: bool = False,
        sender_auth: SenderAuth | None = None,
    ) -> None:
        if require_tls and tls_context is None:
            raise ValueError("require_tls needs a tls_context")
        self.host = host
        self.port = port
        self.policy = policy
        self.on_message = on_message
        self.max_message_bytes = max_message_bytes
        self.callback_timeout = callback_timeout
        self.tls_context = tls_context
        self.require_tls = require_tls
        self.sender_auth = sender_auth
        self._controller: Controller | None = None

    async def start(self) -> None:
        quiet_aiosmtpd_log()
        if not (self.policy.addresses or self.policy.domains):
            log.warning("inbound smtp: no SMTP_FROM or inbound domains set; all mail refused")
        handler = InboundSmtpHandler(
            self.policy,
            self.on_message,
            asyncio.get_running_loop(),
            self.callback_timeout,
            self.sender_auth,
        )
        controller = Controller(
            handler,
            hostname=self.host,
            port=self.port,
            data_size_limit=self.max_message_bytes,
            enable_SMTPUTF8=True,
            ready_timeout=STOP_TIMEOUT,
            # STARTTLS (RFC 3207) on the plain port, not implicit TLS (Controller's ssl_context).
            tls_context=self.tls_context,
            require_starttls=self.require_tls,
        )
        # Controller.start blocks until the server answers; keep the app's loop free.
        await asyncio.to_thread(controller.start)
        self._controller = controller
        tls = "required" if self.require_tls else "offered" if self.tls_context else "off"
        log.info("inbound smtp listening on %s:%s (STARTTLS %s)", self.host, self.port, tls)

    async def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            await asyncio.wait_for(asyncio.to_thread(controller.stop, no_assert=True), STOP_TIMEOUT)
