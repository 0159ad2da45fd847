"""Work that runs beside the HTTP server: the dispatcher and the inbound SMTP listener."""

from __future__ import annotations

from typing import Protocol

from gateway.context import AppContext


class BackgroundService(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def background_services(ctx: AppContext) -> list[BackgroundService]:
    """The services `serve` runs in-process, in start order."""
    services: list[BackgroundService] = []
    if ctx.settings.run_dispatcher:
        from routing.dispatch import Dispatcher

        services.append(Dispatcher(ctx))
    if ctx.settings.inbound_smtp_port:
        services.append(inbound_smtp_listener(ctx))
    if ctx.settings.run_checkins:
        from gateway.checkin_scheduler import CheckinScheduler

        services.append(CheckinScheduler(ctx))
    from routing.fanout import FanoutService

    # Resumes announcement fan-outs a stop or crash left half done.
    services.append(FanoutService(ctx))
    return services


def inbound_smtp_listener(ctx: AppContext) -> BackgroundService:
    """The built-in SMTP server: accepted mail goes through the same ingestion as webhooks."""
    from channels.base import InboundMessage, StatusUpdate
    from channels.email.listener import RecipientPolicy, SmtpListener
    from routing.inbound import ingest

    async def store_email(message: InboundMessage | StatusUpdate) -> None:
        await ingest(ctx, [message])

    settings = ctx.settings
    return SmtpListener(
        host=settings.inbound_smtp_host,
        port=settings.inbound_smtp_port,
        policy=RecipientPolicy([settings.smtp_from or ""], settings.email_domains),
        on_message=store_email,
    )
