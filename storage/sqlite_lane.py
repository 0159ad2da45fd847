"""A plain sqlite3 connection on a thread of its own, for the hot webhook path.

Through SQLAlchemy's async engine every statement costs several hops to aiosqlite's
thread and a few hundred Python calls on the event loop, which on this path is the whole
budget of a webhook. A `SqliteLane` runs a function in ONE hop on its own connection,
inside BEGIN IMMEDIATE ... COMMIT (ROLLBACK when it raises). Rows are encoded with the
bind processors of the models' own column types, so what it writes is byte for byte what
SQLAlchemy would write. It shares the database file with the engine: SQLite's write
lock (BEGIN IMMEDIATE and the same busy_timeout on both) serialises the two.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import JSON, Table
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import make_url

from storage.db import apply_sqlite_pragmas

T = TypeVar("T")
log = logging.getLogger(__name__)
_DIALECT = sqlite.dialect()
_UNSEEN = object()


def lane_path(url: str) -> str | None:
    """The database file of a SQLite URL; None for anything a second connection can't
    share (another database, an in-memory or URI database)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file:") or parsed.query:
        return None
    return database


class Rows:
    """INSERT of `columns` into `table`, each value encoded as SQLAlchemy would."""

    def __init__(self, table: Table, columns: Sequence[str]) -> None:
        self.columns = tuple(columns)
        names = ", ".join(f'"{c}"' for c in self.columns)
        marks = ", ".join("?" for _ in self.columns)
        self.sql = f'INSERT INTO "{table.name}" ({names}) VALUES ({marks})'  # noqa: S608
        self._encoders = [
            (index, fn)
            for index, fn in enumerate(encoder(table, c) for c in self.columns)
            if fn is not None
        ]

    def encode(self, row: dict[str, Any]) -> tuple[Any, ...]:
        values = [row[c] for c in self.columns]
        for index, fn in self._encoders:
            values[index] = fn(values[index])
        return tuple(values)

    def insert(self, cursor: sqlite3.Cursor, rows: Iterable[dict[str, Any]]) -> None:
        cursor.executemany(self.sql, [self.encode(row) for row in rows])


def encoder(table: Table, column: str) -> Callable[[Any], Any] | None:
    """The bind processor of `table.column` on SQLite (None: stored as given)."""
    kind = table.c[column].type.dialect_impl(_DIALECT)
    process = kind.bind_processor(_DIALECT)
    if process is None:
        return None
    if isinstance(kind, JSON):
        return _json_encoder(process)
    return _remembering(process)


def _json_encoder(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """`process`, with empty lists and dicts and None (most rows' JSON) done once."""
    done = {list: process([]), dict: process({}), type(None): process(None)}

    def encode(value: Any) -> Any:
        if not value and type(value) in done:
            return done[type(value)]
        return process(value)

    return encode


def _remembering(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """`process`, answering again at once for the very object it saw last (a batch's
    rows share one timestamp)."""
    last: tuple[Any, Any] = (_UNSEEN, None)  # replaced whole: safe across threads

    def encode(value: Any) -> Any:
        nonlocal last
        seen, answer = last
        if value is not seen:
            answer = process(value)
            last = (value, answer)
        return answer

    return encode


def marks(values: Sequence[Any]) -> str:
    """`?, ?, ...` for an IN list of `values`."""
    return ", ".join("?" for _ in values)


def _open(path: str, *, autocheckpoint: bool) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    apply_sqlite_pragmas(connection, *([] if autocheckpoint else ["wal_autocheckpoint=0"]))
    return connection


class SqliteLane:
    """Transactions in one hop each, on a connection and thread of the lane's own.

    The lane's commits never checkpoint the WAL themselves: a checkpoint copies pages back
    into the database and syncs it, tens of milliseconds that every webhook in the batch
    would wait for. Every `checkpoint_every` commits, a PASSIVE checkpoint runs on a second
    thread and connection instead, beside the writes (SQLite allows that in WAL mode).
    """

    def __init__(self, path: str, *, checkpoint_every: int = 64) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-lane")
        self._connection: sqlite3.Connection | None = None
        self.checkpoint_every = checkpoint_every
        self._checkpointer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-ckpt")
        self._checkpoint_connection: sqlite3.Connection | None = None
        self._checkpointing: Future[None] | None = None
        self._commits_since_checkpoint = 0
        self.checkpoints: list[tuple[int, int, int]] = []  # (busy, wal pages, copied), newest last
        # Called on the lane's thread after each commit (tests watch the order with it).
        self.after_commit: Callable[[], None] | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:  # only ever used on the lane's one thread
            self._connection = _open(self.path, autocheckpoint=False)
        return self._connection

    def _transaction(self, work: Callable[[sqlite3.Cursor], T]) -> T:
        connection = self._connect()
        cursor = connection.cursor()
        try:
            cursor.execute("BEGIN IMMEDIATE")
            result = work(cursor)
            cursor.execute("COMMIT")
            if self.after_commit is not None:
                self.after_commit()
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
        finally:
            cursor.close()
        self._commits_since_checkpoint += 1
        if self._commits_since_checkpoint >= self.checkpoint_every and (
            self._checkpointing is None or self._checkpointing.done()
        ):
            self._commits_since_checkpoint = 0
            self._checkpointing = self._checkpointer.submit(self._checkpoint)
        return result

    def _checkpoint(self) -> None:
        if self._checkpoint_connection is None:  # only ever used on the checkpoint thread
            self._checkpoint_connection = _open(self.path, autocheckpoint=True)
        try:
            row = self._checkpoint_connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as exc:  # the next one will catch up
            log.warning("WAL checkpoint failed: %s", exc)
            return
        self.checkpoints = [*self.checkpoints[-9:], (int(row[0]), int(row[1]), int(row[2]))]

    async def run(self, work: Callable[[sqlite3.Cursor], T]) -> T:
        """`work(cursor)` in one transaction on the lane's thread; committed on return."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._transaction, work)

    async def checkpointed(self) -> None:
        """Wait for the checkpoint in progress, if any."""
        running = self._checkpointing
        if running is not None:
            await asyncio.wrap_future(running)

    def _close(self) -> None:
        for connection in (self._connection, self._checkpoint_connection):
            if connection is not None:
                connection.close()
        self._connection = self._checkpoint_connection = None

    async def aclose(self) -> None:
        await self.checkpointed()
        self._checkpointer.shutdown(wait=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._close)
        self._executor.shutdown(wait=True)
