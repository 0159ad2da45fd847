"""Work that runs beside the HTTP server: the dispatcher (with the fallback-on-silence
scan), the inbound SMTP listener, the IMAP mailbox reader, the check-in scheduler,
retention (RALLYPOINT_RETENTION_DAYS), the Signal receiver and fan-out resumption."""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from channels.base import InboundMessage, StatusUpdate, WebhookEvent
from gateway.context import GatewayContext
from gateway.settings import Settings
from gateway.webhook_checks import made_storable

if TYPE_CHECKING:
    from channels.email.imap_config import ImapConfig

Events = list[InboundMessage | StatusUpdate]

TLS_CERT = "RALLYPOINT_INBOUND_SMTP_TLS_CERT"
TLS_KEY = "RALLYPOINT_INBOUND_SMTP_TLS_KEY"
REQUIRE_TLS = "RALLYPOINT_INBOUND_SMTP_REQUIRE_TLS"


class BackgroundService(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def background_services(ctx: GatewayContext) -> list[BackgroundService]:
    """The services `serve` runs in-process, in start order."""
    services: list[BackgroundService] = []
    if ctx.settings.run_dispatcher:
        from routing.dispatch.dispatcher import Dispatcher
        from routing.dispatch.silence import SilenceFallback
        from routing.webhooks.delivery import WebhookDeliverer

        services.append(Dispatcher(ctx))
        services.append(WebhookDeliverer(ctx))
        services.append(SilenceFallback(ctx))
    if ctx.settings.inbound_smtp_port:
        services.append(inbound_smtp_listener(ctx))
    if ctx.settings.imap_host:
        services.append(imap_poller(ctx))
    if ctx.settings.run_checkins:
        from gateway.checkin_scheduler import CheckinScheduler

        services.append(CheckinScheduler(ctx))
    if ctx.settings.retention_days is not None:
        from gateway.retention import RetentionService

        services.append(RetentionService(ctx))
    from gateway.signal_receiver import signal_receiver

    if (receiver := signal_receiver(ctx)) is not None:
        services.append(receiver)
    from routing.outbound.fanout import FanoutService
    from routing.upkeep import Upkeep

    services.append(Upkeep(ctx))

    # Resumes announcement fan-outs a stop or crash left half done.
    services.append(FanoutService(ctx))
    return services


def store_mail(ctx: GatewayContext, source: str) -> Callable[[Events], Awaitable[None]]:
    """How the SMTP listener stores a mail: through the same ingestion as webhooks, or
    spooled if the database cannot take it in time; if the spool cannot either, it
    raises and the listener answers 451 so the sending server retries."""
    from routing.inbound.spool import spool_for
    from routing.inbound.store import ingest

    async def ingest_events(events: Sequence[WebhookEvent]) -> None:
        await ingest(ctx, list(events))

    async def store(events: Events) -> None:
        await spool_for(ctx).store(made_storable(events), source, ingest_events)

    return store


def store_mail_batch(ctx: GatewayContext) -> Callable[[Events], Awaitable[None]]:
    """How the IMAP reader stores a batch of mails: through the webhooks' group commit
    (set-based, routing/inbound/batch.py: hundreds of mails a second where one transaction
    per mail manages a few dozen), or spooled; raises when neither could take them and the
    mails stay in the mailbox."""
    from routing.inbound.spool import submit_or_spool

    async def store(events: Events) -> None:
        await submit_or_spool(ctx, made_storable(events), "imap")

    return store


def inbound_smtp_listener(ctx: GatewayContext) -> BackgroundService:
    """The built-in SMTP server: accepted mail goes through the same ingestion as webhooks."""
    from channels.email.listener import RecipientPolicy, SmtpListener
    from channels.email.sender_auth import SenderAuth

    store = store_mail(ctx, "smtp")

    async def store_email(message: InboundMessage | StatusUpdate) -> None:
        await store([message])

    settings = ctx.settings
    return SmtpListener(
        host=settings.inbound_smtp_host,
        port=settings.inbound_smtp_port,
        policy=RecipientPolicy([settings.smtp_from or ""], settings.email_domains),
        on_message=store_email,
        tls_context=listener_tls_context(settings),
        require_tls=settings.inbound_smtp_require_tls,
        sender_auth=SenderAuth.from_setting(settings.inbound_smtp_sender_auth),
    )


def imap_poller(ctx: GatewayContext) -> BackgroundService:
    """Reads the hosted mailbox IMAP_HOST: its mail goes the way the listener's does."""
    from channels.email.sender_auth import SenderAuth
    from gateway.imap_poller import ImapPoller

    settings = ctx.settings
    return ImapPoller(
        imap_config(settings),
        store_mail_batch(ctx),
        sender_auth=SenderAuth.from_setting(settings.inbound_smtp_sender_auth),
    )


def imap_config(settings: Settings) -> ImapConfig:
    """The IMAP reader's settings; a ValueError naming the setting when they cannot work."""
    from channels.email.imap_config import ImapConfig

    host = (settings.imap_host or "").strip()
    if not host:
        raise ValueError("IMAP_HOST is not set")
    for name, value in (
        ("IMAP_USERNAME", settings.imap_username),
        ("IMAP_PASSWORD", settings.imap_password),
    ):
        if not value:
            raise ValueError(f"{name} is not set (IMAP_HOST is)")
    if not settings.imap_tls and not is_loopback(host):
        raise ValueError(
            "IMAP_TLS=false sends the mailbox password in the clear: allowed only for a "
            f"server on this machine (IMAP_HOST={host} is not a loopback address)"
        )
    return ImapConfig(
        host=host,
        port=settings.imap_port,
        username=settings.imap_username or "",
        password=settings.imap_password or "",
        tls=settings.imap_tls,
        mailbox=settings.imap_mailbox.strip() or "INBOX",
        processed_mailbox=settings.imap_processed_mailbox.strip().strip("/"),
        poll_seconds=settings.imap_poll_seconds,
    )


def is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def listener_tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The inbound listener's STARTTLS context, None without TLS settings. Bad settings
    raise a ValueError naming the setting, before anything listens."""
    from channels.email.listener import server_tls_context

    cert, key = settings.inbound_smtp_tls_cert, settings.inbound_smtp_tls_key
    if not cert and not key:
        if settings.inbound_smtp_require_tls:
            raise ValueError(f"{REQUIRE_TLS} needs {TLS_CERT} and {TLS_KEY}")
        return None
    if not (cert and key):
        raise ValueError(f"{TLS_KEY if cert else TLS_CERT} is not set (give both or neither)")
    for name, path in ((TLS_CERT, cert), (TLS_KEY, key)):
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            raise ValueError(f"{name}: cannot read {path} ({exc.strerror})") from None
    try:
        return server_tls_context(cert, key)
    except ssl.SSLError as exc:
        raise ValueError(
            f"{TLS_CERT} / {TLS_KEY}: {cert} and {key} are not a PEM certificate chain and "
            f"its unencrypted private key ({exc.reason or exc})"
        ) from None
