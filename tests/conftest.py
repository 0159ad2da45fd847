"""Shared fixtures: a fresh database per test (SQLite, or PostgreSQL when
RALLYPOINT_TEST_DATABASE_URL is set), an injected clock, the app over ASGI."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlmodel import SQLModel

from gateway.app import create_app
from gateway.keys import insert_key
from gateway.settings import Settings
from routing.context import AppContext
from storage.crypto import install
from storage.crypto_setup import setup_encryption
from storage.db import make_engine
from storage.migrate import stamp_head

PG_URL = os.environ.get("RALLYPOINT_TEST_DATABASE_URL")


class FakeClock:
    """A clock tests move by hand: `clock()` is now, `clock.advance(seconds=…)` moves it."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 3, 4, 15, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now

    def set(self, when: datetime) -> None:
        self.now = when


async def create_schema(url: str) -> None:
    """The schema from the models, stamped as migrated (tests/test_migrations.py checks
    that the migrations build the same schema)."""
    engine = make_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(SQLModel.metadata.create_all)
    await engine.dispose()
    await stamp_head(url)


@pytest.fixture(scope="session")
def _migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path | None:
    """Migrate once per run: a SQLite file to copy, or the PostgreSQL schema."""
    if PG_URL:

        async def reset() -> None:
            engine = make_engine(PG_URL)
            async with engine.begin() as conn:
                await conn.execute(text("DROP SCHEMA public CASCADE"))
                await conn.execute(text("CREATE SCHEMA public"))
            await engine.dispose()
            await create_schema(PG_URL)

        asyncio.run(reset())
        return None
    path = tmp_path_factory.mktemp("template") / "template.db"
    asyncio.run(create_schema(f"sqlite:///{path}"))
    return path


@pytest.fixture
def database_url(_migrated_template: Path | None, tmp_path: Path) -> str:
    if PG_URL:

        async def truncate() -> None:
            engine = make_engine(PG_URL)
            names = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
            async with engine.begin() as conn:
                await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            await engine.dispose()

        asyncio.run(truncate())
        return PG_URL
    assert _migrated_template is not None
    target = tmp_path / "rallypoint.db"
    shutil.copy(_migrated_template, target)
    return f"sqlite:///{target}"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "public_url": "https://rallypoint.example.org",
        "default_region": "US",
        # A loaded test machine can take over 2 s for a commit; the spool tests set their
        # own deadline, everything else must not be spooled by a slow moment.
        "spool_after_ms": 60_000,
    }
    # RALLYPOINT_TEST_ENCRYPTION_KEYS: run the suite with encryption at rest on.
    if os.environ.get("RALLYPOINT_TEST_ENCRYPTION_KEYS"):
        values["encryption_keys"] = os.environ["RALLYPOINT_TEST_ENCRYPTION_KEYS"]
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(database_url, spool_dir=str(tmp_path / "spool"))


AppFactory = Callable[..., Awaitable[tuple[Any, httpx.AsyncClient]]]


@pytest.fixture
async def make_client(
    database_url: str, clock: FakeClock, tmp_path: Path
) -> AsyncIterator[Callable[..., Awaitable[httpx.AsyncClient]]]:
    """Build the app with settings overrides (and an optional provider transport) and
    return an httpx client that talks to it over ASGI. `client.ctx` is the AppContext."""
    opened: list[tuple[httpx.AsyncClient, AppContext]] = []

    async def factory(
        *, transport: httpx.AsyncBaseTransport | None = None, **overrides: Any
    ) -> httpx.AsyncClient:
        # Anything spooled goes to the test's own directory, never the working tree.
        overrides.setdefault("spool_dir", str(tmp_path / "spool"))
        settings = make_settings(database_url, **overrides)
        provider_client = httpx.AsyncClient(transport=transport) if transport else None
        app = create_app(settings, clock=clock, http_client=provider_client)
        ctx: AppContext = app.state.ctx
        # As `serve` starts (gateway.app.prepare): the sealed columns get this app's keys.
        await setup_encryption(ctx.engine, settings.encryption_keys)
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="https://rallypoint.example.org"
        )
        client.app = app  # type: ignore[attr-defined]
        client.ctx = ctx  # type: ignore[attr-defined]
        opened.append((client, ctx))
        return client

    yield factory
    from gateway.app import shutdown

    for client, ctx in opened:
        await client.aclose()
        await shutdown(ctx)
    install(None)


async def new_key(ctx: AppContext, role: str = "admin", team_id: int | None = None) -> str:
    async with ctx.sessions() as session:
        key = await insert_key(session, role=role, team_id=team_id)
        await session.commit()
    return key


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
async def client(make_client: Callable[..., Awaitable[httpx.AsyncClient]]) -> httpx.AsyncClient:
    """A client with no channels configured, authenticated as admin."""
    c = await make_client()
    c.headers.update(bearer(await new_key(c.ctx)))  # type: ignore[attr-defined]
    return c
