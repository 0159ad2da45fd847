"""Engine and session factory for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.outbox_signal import SIGNAL_KEY, OutboxSignal, SignalingSession
from storage.quiet_log import quiet_driver_logs

# Imported for its flush listener: supporters' search terms follow every ORM write of a
# name or an address, whichever engine the session is on.
from storage.search_terms import refresh_terms_sync  # noqa: F401

SessionFactory = async_sessionmaker[AsyncSession]
log = logging.getLogger(__name__)


def async_url(url: str) -> str:
    """Give plain `sqlite:///` and `postgresql://` URLs their async driver."""
    parsed = make_url(url)
    driver = parsed.drivername
    if driver == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif driver in ("postgresql", "postgres", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed.render_as_string(hide_password=False)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


# Every SQLite connection of ours, the engine's and the ingest lane's (storage/sqlite_lane).
SQLITE_PRAGMAS = (
    "journal_mode=WAL",
    "foreign_keys=ON",
    "synchronous=NORMAL",
    "busy_timeout=10000",
    # Deleted content is overwritten with zeros, not just unlinked: an erased supporter's
    # bytes leave the file (and, once checkpointed, the WAL; see truncate_wal).
    "secure_delete=ON",
)


def apply_sqlite_pragmas(dbapi_connection: Any, *extra: str) -> None:
    cursor = dbapi_connection.cursor()
    for pragma in (*SQLITE_PRAGMAS, *extra):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Transactions are begun by us (BEGIN IMMEDIATE below), not by the driver.
    dbapi_connection.isolation_level = None
    apply_sqlite_pragmas(dbapi_connection)


def _sqlite_begin_immediate(connection: Any) -> None:
    # SQLite has one writer. A deferred transaction that reads and then writes fails at
    # once with SQLITE_BUSY when another connection wrote meanwhile (no busy wait), so
    # every transaction takes the write lock up front and waits its turn instead.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str, **kwargs: Any) -> AsyncEngine:
    url = async_url(url)
    quiet_driver_logs()
    # An error's text (logged with its traceback) would otherwise quote the statement's
    # parameters: supporters' addresses and messages.
    kwargs.setdefault("hide_parameters", True)
    if is_sqlite(url):
        engine = create_async_engine(url, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin_immediate)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    kwargs.setdefault("pool_pre_ping", True)
    return create_async_engine(url, **kwargs)


def make_session_factory(
    engine: AsyncEngine,
    *,
    outbox_signal: OutboxSignal | None = None,
    info: dict[str, Any] | None = None,
) -> SessionFactory:
    """Sessions on `engine`; with `outbox_signal`, each commit that inserted outbox rows
    notifies it (storage/outbox_signal.py). `info` is copied into each session's `info`
    (what the context shares with code given only a session)."""
    if outbox_signal is None:
        return async_sessionmaker(
            engine, class_=AsyncSession, expire_on_commit=False, info=dict(info or {})
        )
    return async_sessionmaker(
        engine,
        class_=AsyncSession,
        expire_on_commit=False,
        sync_session_class=SignalingSession,
        info={**(info or {}), SIGNAL_KEY: outbox_signal},
    )


async def truncate_wal(engine: AsyncEngine) -> bool:
    """SQLite: copy the WAL into the database file and empty it (checkpoint TRUNCATE), so
    that pages an erasure overwrote are not still readable in the WAL. Waits up to the
    busy timeout for readers; False (logged) when a reader held it back, so the next
    checkpoint finishes the job. A no-op on PostgreSQL (README "Privacy": VACUUM)."""
    if engine.dialect.name != "sqlite" or not engine.url.database:
        return True
    path = engine.url.database

    def checkpoint() -> bool:
        connection = sqlite3.connect(path, isolation_level=None)
        try:
            apply_sqlite_pragmas(connection)
            busy = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        finally:
            connection.close()
        return not busy

    done = await asyncio.to_thread(checkpoint)
    if not done:
        log.warning("WAL checkpoint (TRUNCATE) held back by a reader; the next one finishes it")
    return done
