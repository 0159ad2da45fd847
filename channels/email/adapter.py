"""Outbound email over SMTP (aiosmtplib). Inbound mail arrives through listener.py.

Email has no webhook: `verify` always raises InvalidSignature, so POST /webhooks/email
answers 403 and stores nothing.
"""

from __future__ import annotations

import asyncio
import html
import logging
from email.message import EmailMessage, Message
from email.utils import make_msgid, parseaddr

import aiosmtplib
import httpx

from channels.base import (
    Capabilities,
    Channel,
    ChannelMisconfigured,
    FileAttachment,
    InvalidRecipient,
    InvalidSignature,
    MediaError,
    MediaUnavailable,
    OutboundMessage,
    ProviderUnavailable,
    SendError,
    SendResult,
    Throttled,
    WebhookEvent,
    WebhookRequest,
    WebhookResponse,
)
from channels.email.config import EmailConfig
from channels.media import download

log = logging.getLogger(__name__)

# Larger attachments are refused (many mail servers take no more than 25 MB, base64 and all).
MAX_ATTACHMENT_BYTES = 16 * 1024 * 1024
SMTP_TIMEOUT = 30.0  # per SMTP command, unless the config says otherwise
DEADLINE_COMMANDS = 3  # the whole conversation with the server: this many commands' time
# 5xx replies that mean "this mailbox", not "this server" or "this message".
_BAD_RECIPIENT_CODES = {550, 551, 553}
_AUTH_FAILED_CODES = {530, 534, 535, 538}
# SMTP has no 429: a server that wants us slower closes with 421 (Gmail: "421 4.7.0 Try
# again later ... rate limiting") or says 4.2.1 (RFC 3463 "mailbox ... receiving at a rate
# that prevents additional messages") or 4.4.5 ("mail system congestion"). Such a sender
# waits (Throttled); other 4xx are the server's trouble (ProviderUnavailable). SMTP gives
# no retry-after: the dispatcher's backoff decides.
_THROTTLED_CODES = {421}
_THROTTLED_STATUSES = ("4.2.1", "4.4.5")


def text_to_html(body: str) -> str:
    """A minimal HTML rendering: escaped, blank lines → paragraphs, newlines → <br>."""
    paragraphs = [p for p in body.replace("\r\n", "\n").split("\n\n") if p.strip()]
    inner = "".join(
        "<p>" + html.escape(p.strip("\n")).replace("\n", "<br>\n") + "</p>\n" for p in paragraphs
    )
    return f"<!DOCTYPE html>\n<html><body>\n{inner}</body></html>\n"


def _one_line(value: str | None) -> str:
    # Header values never carry line breaks (header injection, folding is the library's job).
    return " ".join((value or "").split())


def _attach(mail: EmailMessage, file: FileAttachment) -> None:
    """Attach `file` with its type's parameters (a calendar invitation keeps its
    `method=REQUEST`, which mail clients read to offer accept / decline)."""
    header = Message()
    header["Content-Type"] = file.content_type
    maintype, subtype = header.get_content_maintype(), header.get_content_subtype()
    params = dict(header.get_params(failobj=[])[1:])
    filename = _one_line(file.filename) or "attachment"
    if maintype == "text":
        text = file.data.decode("utf-8", "replace")
        mail.add_attachment(text, subtype=subtype, filename=filename, params=params)
    else:
        mail.add_attachment(
            file.data, maintype=maintype, subtype=subtype, filename=filename, params=params
        )


def classify_smtp_error(exc: Exception) -> SendError:
    """aiosmtplib's exceptions in our SendError vocabulary."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        exc = exc.recipients[0]
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        code, text = exc.code, f"{exc.code} {exc.message}"
        if code in _AUTH_FAILED_CODES or isinstance(exc, aiosmtplib.SMTPAuthenticationError):
            return ChannelMisconfigured(f"SMTP login failed: {code}", code=str(code))
        if code in _THROTTLED_CODES or exc.message.startswith(_THROTTLED_STATUSES):
            return Throttled(text, code=str(code))
        if 400 <= code < 500:
            return ProviderUnavailable(text, code=str(code))
        if code in _BAD_RECIPIENT_CODES and isinstance(exc, aiosmtplib.SMTPRecipientRefused):
            return InvalidRecipient(text, code=str(code))
        return SendError(text, code=str(code))
    if isinstance(exc, (ConnectionError, TimeoutError, OSError)):
        return ProviderUnavailable(f"SMTP server unreachable: {exc.__class__.__name__}: {exc}")
    # What is left is the client refusing to go on (e.g. STARTTLS or AUTH required but
    # not offered): a settings problem that retrying will not fix.
    return ChannelMisconfigured(f"SMTP session not possible: {exc}")


class EmailAdapter:
    provider = "email"
    channels: tuple[Channel, ...] = ("email",)

    def __init__(
        self,
        *,
        host: str,
        port: int,
        sender: str,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = True,
        default_subject: str = "Message from Rallypoint",
        rate_per_second: float | None = None,
        timeout: float = SMTP_TIMEOUT,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self.http_client = http_client  # fetches the media sent as attachments
        self.rate_per_second = rate_per_second
        self.timeout = timeout
        self.host = host
        self.port = port
        self.sender = sender  # the From header, possibly with a display name
        self.sender_address = parseaddr(sender)[1].lower() or sender.lower()
        self.username = username
        self.password = password
        self.starttls = starttls
        self.default_subject = default_subject

    def verify(self, request: WebhookRequest) -> None:
        raise InvalidSignature("email arrives over SMTP, not a webhook")

    def parse(self, request: WebhookRequest) -> list[WebhookEvent]:
        return []  # never reached: verify refuses every webhook

    def accepted_response(self, request: WebhookRequest) -> WebhookResponse:
        return WebhookResponse()

    def capabilities(self, channel: Channel) -> Capabilities:
        # Media go as attachments, fetched from their URLs when the mail is sent.
        return Capabilities(max_length=None, media=self.http_client is not None)

    def sender_key(self, channel: Channel) -> str:
        return "email:" + self.sender_address

    def build_message(self, message: OutboundMessage) -> EmailMessage:
        """The MIME message: plain text plus an HTML alternative, threading headers set."""
        to = parseaddr(message.to)[1]
        if to.count("@") != 1 or any(c in message.to for c in "\r\n"):
            raise InvalidRecipient("not an email address")
        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = to
        mail["Subject"] = _one_line(message.subject) or self.default_subject
        domain = self.sender_address.rsplit("@", 1)[-1] or None
        message_id = message.email_message_id or make_msgid(domain=domain)
        if not message_id.startswith("<"):
            message_id = f"<{message_id}>"
        mail["Message-ID"] = _one_line(message_id)
        if message.in_reply_to:
            mail["In-Reply-To"] = _one_line(message.in_reply_to)
        if message.references:
            mail["References"] = _one_line(message.references)
        mail.set_content(message.body)
        mail.add_alternative(text_to_html(message.body), subtype="html")
        for file in message.files:
            _attach(mail, file)
        return mail

    async def attach_media(self, mail: EmailMessage, message: OutboundMessage) -> None:
        """Each file of `message` as an attachment (a MediaError as our SendError: an
        unreachable file is retried, a missing or oversized one is permanent)."""
        for index, media in enumerate(message.media_items()):
            assert self.http_client is not None
            try:
                content = await download(
                    self.http_client,
                    media.url,
                    provider="email media",
                    max_bytes=MAX_ATTACHMENT_BYTES,
                    follow_redirects=True,
                )
            except MediaUnavailable as exc:
                raise ProviderUnavailable(str(exc), code="media") from exc
            except MediaError as exc:
                raise SendError(str(exc), code="media") from exc
            kind = media.content_type or content.content_type or "application/octet-stream"
            maintype, _, subtype = kind.split(";", 1)[0].strip().partition("/")
            if not maintype or not subtype:
                maintype, subtype = "application", "octet-stream"
            name = _one_line(media.filename) or f"attachment-{index + 1}"
            mail.add_attachment(content.content, maintype=maintype, subtype=subtype, filename=name)

    async def send(self, message: OutboundMessage) -> SendResult:
        mail = self.build_message(message)
        if message.media_items() and self.http_client is not None:
            await self.attach_media(mail, message)
        implicit_tls = self.port == 465
        try:
            async with asyncio.timeout(self.timeout * DEADLINE_COMMANDS):
                await aiosmtplib.send(
                    mail,
                    sender=self.sender_address,
                    recipients=[str(mail["To"])],
                    hostname=self.host,
                    port=self.port,
                    username=self.username,
                    password=self.password,
                    use_tls=implicit_tls,
                    start_tls=self.starttls and not implicit_tls,
                    timeout=self.timeout,
                )
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            error = classify_smtp_error(exc)
            log.warning(
                "email send failed: message=%s %s (%s)",
                message.message_id,
                error.__class__.__name__,
                error.code,
            )
            raise error from exc
        return SendResult(provider_message_id=str(mail["Message-ID"]), status="sent")

    async def aclose(self) -> None:
        return None


def build_adapter(config: EmailConfig, http_client: httpx.AsyncClient) -> EmailAdapter:
    """The registry's factory (the HTTP client fetches the media to attach)."""
    return EmailAdapter(
        host=config.host,
        port=config.port,
        sender=config.sender,
        username=config.username,
        password=config.password,
        starttls=config.starttls,
        default_subject=config.default_subject,
        rate_per_second=config.rate_per_second,
        timeout=config.timeout,
        http_client=http_client,
    )
