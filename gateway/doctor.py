"""`rallypoint doctor`: is this installation able to work? The database answers and is
migrated, the public URL is https, and each configured provider accepts our credentials
and holds our webhook URL (the provider calls are each adapter's `check.py`)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from channels.checks import CheckResult, failed, passed
from channels.email.check import check_email
from channels.telegram.check import check_telegram
from channels.twilio.check import check_twilio
from channels.whatsapp_cloud.check import check_whatsapp_cloud
from gateway.channel_configs import channel_configs
from gateway.settings import Settings
from storage.db import is_sqlite, make_engine
from storage.migrate import current_revision, head_revision

DATABASE_TIMEOUT = 10.0
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"


def _database_name(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _sqlite_path(url: str) -> Path | None:
    database = make_url(url).database
    return Path(database) if database and database != ":memory:" else None


async def check_database(settings: Settings) -> list[CheckResult]:
    url = settings.database_url
    name = _database_name(url)
    path = _sqlite_path(url) if is_sqlite(url) else None
    if path is not None and not path.exists():  # connecting would create an empty file
        return [failed("database", f"{name}: no such file (run `rallypoint migrate`)")]
    engine = make_engine(url)
    try:
        async with asyncio.timeout(DATABASE_TIMEOUT):
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
            current = await current_revision(engine)
    except (DBAPIError, OSError, TimeoutError) as exc:
        cause = exc.orig if isinstance(exc, DBAPIError) else exc
        reason = (str(cause).splitlines() or [""])[0][:200] or type(cause).__name__
        return [failed("database", f"{name}: {reason}")]
    finally:
        await engine.dispose()
    results = [passed("database", f"{name} answers")]
    head = head_revision()
    if current == head:
        results.append(passed("database migrations", f"at head ({head})"))
    else:
        results.append(
            failed(
                "database migrations",
                f"at {current or 'no revision (never migrated)'}, head is {head} "
                "(run `rallypoint migrate`)",
            )
        )
    return results


def check_public_url(settings: Settings) -> CheckResult:
    url = settings.public_url.rstrip("/")
    parts = urlsplit(url)
    if url == DEFAULT_PUBLIC_URL:
        return failed("public url", "RALLYPOINT_PUBLIC_URL is not set")
    if parts.scheme != "https" or not parts.hostname:
        return failed("public url", f"{url}: providers need an https URL")
    return passed("public url", url)


async def run_checks(settings: Settings, client: httpx.AsyncClient) -> list[CheckResult]:
    configs = channel_configs(settings)
    base = settings.public_url.rstrip("/")
    provider_checks = []
    if configs.twilio is not None:
        provider_checks.append(check_twilio(configs.twilio, client, base + "/webhooks/twilio"))
    if configs.whatsapp_cloud is not None:
        provider_checks.append(check_whatsapp_cloud(configs.whatsapp_cloud, client))
    if configs.telegram is not None:
        provider_checks.append(
            check_telegram(configs.telegram, client, base + "/webhooks/telegram")
        )
    if configs.email is not None:
        provider_checks.append(check_email(configs.email))
    database, *providers = await asyncio.gather(check_database(settings), *provider_checks)
    results = [*database, check_public_url(settings)]
    if not providers:
        results.append(failed("channels", "none is configured (see README, Configuration)"))
    for found in providers:
        results.extend(found)
    return results


def render(result: CheckResult) -> str:
    return f"{'ok' if result.ok else 'FAIL':<4}  {result.name}: {result.detail}"
