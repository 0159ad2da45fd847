"""Work that runs beside the HTTP server: the dispatcher (with the fallback-on-silence
scan), the inbound SMTP listener, the check-in scheduler, retention
(RALLYPOINT_RETENTION_DAYS), the Signal receiver and fan-out resumption."""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from typing import Protocol

from gateway.context import GatewayContext
from gateway.settings import Settings

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

    # Resumes announcement fan-outs a stop or crash left half done.
    services.append(FanoutService(ctx))
    return services


def inbound_smtp_listener(ctx: GatewayContext) -> BackgroundService:
    """The built-in SMTP server: accepted mail goes through the same ingestion as webhooks."""
    from channels.base import InboundMessage, StatusUpdate, WebhookEvent
    from channels.email.listener import RecipientPolicy, SmtpListener
    from channels.email.sender_auth import SenderAuth
    from routing.inbound.spool import spool_for
    from routing.inbound.store import ingest

    async def ingest_events(events: Sequence[WebhookEvent]) -> None:
        await ingest(ctx, list(events))

    async def store_email(message: InboundMessage | StatusUpdate) -> None:
        # Stored, or spooled if the database cannot take it in time; if the spool cannot
        # either, this raises and the listener answers 451 so the sending server retries.
        await spool_for(ctx).store([message], "smtp", ingest_events)

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
