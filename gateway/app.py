"""The FastAPI application, built from settings: `create_app(settings)`."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from sqlmodel import select

from channels.provider_client import ProviderClient
from channels.registry import build_registry
from gateway import api, console, log_redaction, public_pages, webhooks
from gateway.api.body_limit import JsonBodyLimit
from gateway.api.problem_answers import install_problem_handlers
from gateway.audit import record
from gateway.auth import hash_key
from gateway.background import background_services
from gateway.channel_configs import channel_configs
from gateway.context import GatewayContext
from gateway.health import HealthCheck
from gateway.heap import settle_heap
from gateway.metrics import metrics_response, readiness
from gateway.settings import Settings
from gateway.startup_report import log_startup
from gateway.webhooks_asgi import RallypointApp
from routing.inbound.spool import resume_replay
from routing.webhooks import events as webhook_events
from storage.clock import Clock, utcnow
from storage.crypto_setup import setup_encryption
from storage.db import is_sqlite, make_engine, make_session_factory
from storage.migrate import upgrade
from storage.models import ApiKey
from storage.outbox_signal import OutboxSignal

log = logging.getLogger(__name__)


def provider_client(settings: Settings) -> httpx.AsyncClient:
    """The one HTTP client every adapter sends through.

    httpx's API over aiohttp's connection pool (channels/provider_client.py): httpx's own pool slows
    down sharply with hundreds of requests in flight (the dispatcher keeps
    RALLYPOINT_DISPATCH_CONCURRENCY sends going), and the sends skip httpx's layers and go
    to aiohttp directly; tests still inject an httpx.MockTransport the same way.
    RALLYPOINT_HTTP_POOL connections at most (0: the concurrency, at least 100).
    """
    return ProviderClient(pool=settings.http_pool or max(settings.dispatch_concurrency, 100))


def build_context(
    settings: Settings,
    *,
    clock: Clock = utcnow,
    http_client: httpx.AsyncClient | None = None,
) -> GatewayContext:
    engine = make_engine(settings.database_url)
    client = http_client or provider_client(settings)
    outbox_signal = OutboxSignal()
    # Which webhook events are subscribed: the context's and each of its sessions'.
    subscribed = webhook_events.Subscribed()
    return GatewayContext(
        settings=settings,
        engine=engine,
        sessions=make_session_factory(
            engine, outbox_signal=outbox_signal, info={webhook_events.SUBSCRIBED: subscribed}
        ),
        registry=build_registry(channel_configs(settings), client),
        http_client=client,
        clock=clock,
        outbox_signal=outbox_signal,
        services={webhook_events.SUBSCRIBED: subscribed},
    )


BOOTSTRAP_NAME = "bootstrap"


async def ensure_bootstrap_key(ctx: GatewayContext) -> None:
    """If RALLYPOINT_BOOTSTRAP_ADMIN_KEY is set, an admin key with that value exists; a
    key an earlier value made is revoked when the value changes or is unset (a revoked
    one stays revoked, even if its value comes back)."""
    key = ctx.settings.bootstrap_admin_key
    digest = hash_key(key) if key else None
    now = ctx.clock()
    async with ctx.sessions() as session:
        made = (
            await session.exec(
                select(ApiKey).where(ApiKey.name == BOOTSTRAP_NAME, ApiKey.role == "admin")
            )
        ).all()
        for row in made:
            if row.revoked_at is None and row.key_hash != digest:
                row.revoked_at = now
                session.add(row)
                record(session, "key_revoked", at=now, actor="bootstrap", target=f"key:{row.id}")
        if digest is not None and all(row.key_hash != digest for row in made):
            taken = (await session.exec(select(ApiKey).where(ApiKey.key_hash == digest))).first()
            if taken is None:
                session.add(
                    ApiKey(
                        key_hash=digest,
                        prefix=key[:8] if key else "",
                        role="admin",
                        name=BOOTSTRAP_NAME,
                        created_at=now,
                    )
                )
        await session.commit()


async def prepare(ctx: GatewayContext, *, migrate: bool | None = None) -> None:
    """Start-up work: migrate the embedded SQLite database, create the bootstrap key."""
    if migrate if migrate is not None else is_sqlite(ctx.settings.database_url):
        await upgrade(ctx.settings.database_url)
    # Before anything reads or writes a sealed column; raises EncryptionSetupError.
    await setup_encryption(ctx.engine, ctx.settings.encryption_keys)
    await ensure_bootstrap_key(ctx)
    await webhook_events.refresh(ctx)  # which events ingest must write deliveries for


async def shutdown(ctx: GatewayContext) -> None:
    for service in ctx.services.values():
        await service.aclose()
    await ctx.registry.aclose()
    await ctx.http_client.aclose()
    await ctx.engine.dispose()


def create_app(
    settings: Settings,
    *,
    clock: Clock = utcnow,
    http_client: httpx.AsyncClient | None = None,
    run_background: bool = False,
    settle: bool = False,
) -> FastAPI:
    """Build the app. `run_background` starts the dispatcher/SMTP listener with the app;
    `settle` tunes the garbage collector once start-up is done (`gateway.heap`)."""
    ctx = build_context(settings, clock=clock, http_client=http_client)
    log_redaction.install()  # no callback URL's secret in the access log

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await prepare(ctx)
        if run_background:  # the serving process, not each test's app
            log_startup(settings, ctx.registry)
        resume_replay(ctx)  # what a stopped or crashed process left in the spool
        services = background_services(ctx) if run_background else []
        for service in services:
            await service.start()
        if settle:
            settle_heap(settings.gc_threshold)
        try:
            yield
        finally:
            for service in reversed(services):
                await service.stop()
            await shutdown(ctx)

    app = RallypointApp(
        title="Rallypoint",
        version="0.1.0",
        description="Multi-channel messaging gateway for organizers of remote volunteers.",
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    app.add_middleware(JsonBodyLimit, limit=settings.max_json_bytes)
    app.include_router(webhooks.router)
    app.include_router(api.router)
    app.include_router(public_pages.router)
    install_problem_handlers(app)  # before the console's, which wrap them
    console.install(app)

    health = HealthCheck(ctx)
    ctx.services["health"] = health

    @app.get("/healthz", tags=["health"])
    async def healthz() -> JSONResponse:
        return await health.answer()

    @app.get("/readyz", tags=["health"])
    async def readyz() -> JSONResponse:
        """200 when the database answers and its migrations are at head, else 503."""
        return await readiness(ctx)

    @app.get("/metrics", tags=["health"], response_class=Response)
    async def metrics() -> Response:
        """Prometheus text format: `rallypoint_…` counters and gauges."""
        return await metrics_response(ctx)

    return app
