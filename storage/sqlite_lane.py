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
import operator
import re
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import JSON, ClauseElement, Table, insert
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.sql.compiler import SQLCompiler

from storage.db import apply_sqlite_pragmas
from storage.sealed_types import bind_by_stored

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


_POSTCOMPILE = re.compile(r"__\[POSTCOMPILE_(\w+)\]")


class Statement:
    """A SQLAlchemy statement compiled for SQLite once, run on a lane cursor.

    Parameters are encoded with the bind processors SQLAlchemy would use, and expanding
    parameters (`bindparam(name, expanding=True)`, an IN list) become as many `?` as the
    list has values, as SQLAlchemy does at execution time, without compiling again.
    """

    def __init__(self, statement: ClauseElement, column_keys: Sequence[str] | None = None) -> None:
        compiled = statement.compile(dialect=_DIALECT, column_keys=column_keys)
        assert isinstance(compiled, SQLCompiler)
        self.sql = compiled.string
        parts = _POSTCOMPILE.split(self.sql)  # text, name, text, name, ..., text
        self._texts, self._lists = parts[0::2], set(parts[1::2])
        self._order: list[str] = list(compiled.positiontup or [])
        # Values written into the statement itself (`kind == "poll"`): bound as given.
        self._literals: dict[str, Any] = {
            name: compiled.binds[name].value
            for name in self._order
            if not compiled.binds[name].required
        }
        self._encoders: dict[str, Callable[[Any], Any]] = {}
        for name in set(self._order):
            process = _processor(compiled.binds[name].type)
            if process is not None:
                self._encoders[name] = process
        # By position, for rows of an executemany (the hot loop: one per row).
        self._encoder_at = [
            (index, self._encoders[name])
            for index, name in enumerate(self._order)
            if name in self._encoders
        ]
        # An insert's row has every parameter: picked in one call.
        self._pick = (
            operator.itemgetter(*self._order)
            if len(self._order) > 1 and not self._literals
            else None
        )

    def values(self, params: dict[str, Any]) -> list[Any]:
        """The positional values for `params` (a statement without expanding parameters)."""
        literals = self._literals
        if self._pick is not None:
            try:
                values = list(self._pick(params))
            except KeyError:  # a parameter missing: the error below names it
                values = [params[n] for n in self._order]
        else:
            values = [params[n] if n in params else literals[n] for n in self._order]
        for index, encode in self._encoder_at:
            values[index] = encode(values[index])
        return values

    def bind(self, params: dict[str, Any]) -> tuple[str, list[Any]]:
        """The SQL and its positional values for `params`."""
        values: list[Any] = []
        sizes: list[int] = []
        for name in self._order:
            value: Any = params[name] if name in params else self._literals[name]
            encode = self._encoders.get(name)
            if name in self._lists:
                sizes.append(len(value))
                values.extend(value if encode is None else [encode(v) for v in value])
            else:
                values.append(value if encode is None else encode(value))
        if not sizes:
            return self.sql, values
        sql = [self._texts[0]]
        for size, text in zip(sizes, self._texts[1:], strict=True):
            sql += [marks(range(size)), text]
        return "".join(sql), values

    def execute(self, cursor: sqlite3.Cursor, **params: Any) -> sqlite3.Cursor:
        return cursor.execute(*self.bind(params))

    def execute_many(self, cursor: sqlite3.Cursor, rows: Iterable[dict[str, Any]]) -> None:
        """The statement once per row (no expanding parameters)."""
        assert not self._lists
        cursor.executemany(self.sql, [self.values(row) for row in rows])


class Rows:
    """INSERT into `table` of rows (dicts of column values), compiled once per set of
    columns from the table itself; a column left out gets its Python-side default, as in
    a SQLAlchemy insert."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self._inserts: dict[tuple[str, ...], tuple[Statement, dict[str, Any]]] = {}

    def _insert(self, keys: tuple[str, ...]) -> tuple[Statement, dict[str, Any]]:
        found = self._inserts.get(keys)
        if found is None:
            defaults: dict[str, Any] = {}
            for column in self.table.columns:
                if column.key not in keys and column.default is not None:
                    if not column.default.is_scalar:
                        raise ValueError(f"{self.table.name}.{column.key}: give it a value")
                    defaults[column.key] = column.default.arg  # type: ignore[attr-defined]
            statement = Statement(insert(self.table), column_keys=[*keys, *defaults])
            found = self._inserts[keys] = (statement, defaults)
        return found

    def insert(self, cursor: sqlite3.Cursor, rows: Iterable[dict[str, Any]]) -> None:
        rows = list(rows)
        if not rows:
            return
        statement, defaults = self._insert(tuple(rows[0]))
        if defaults:
            rows = [{**defaults, **row} for row in rows]
        statement.execute_many(cursor, rows)


def _processor(kind: Any) -> Callable[[Any], Any] | None:
    """The bind processor of a column type on SQLite (None: stored as given)."""
    impl = kind.dialect_impl(_DIALECT)
    process = impl.bind_processor(_DIALECT)
    if process is None:
        return None
    if isinstance(impl, JSON):
        return _json_encoder(process)
    if getattr(kind, "fresh_per_value", False):  # sealed: a fresh nonce for every value
        return _sealing(kind, process)
    return _remembering(process)


def _sealing(kind: Any, process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A sealed type's bind processor: its own `stored(value)` when that is all its bind
    processor does and its stored type (Text) processes nothing more on SQLite (what
    SQLAlchemy's wrapper would call, a few calls fewer per value), else SQLAlchemy's."""
    impl = getattr(kind, "impl_instance", None)
    if (
        getattr(type(kind), "process_bind_param", None) is bind_by_stored
        and impl is not None
        and impl.bind_processor(_DIALECT) is None
    ):
        direct: Callable[[Any], Any] = kind.stored
        return direct
    sealing: Callable[[Any], Any] = process
    return sealing


def encoder(table: Table, column: str) -> Callable[[Any], Any] | None:
    """The bind processor of `table.column` on SQLite (None: stored as given)."""
    return _processor(table.c[column].type)


def decoder(table: Table, column: str) -> Callable[[Any], Any]:
    """The result processor of `table.column` on SQLite: what SQLAlchemy would make of a
    value a lane statement read (a sealed column decrypted); as read when it has none."""
    process = table.c[column].type.dialect_impl(_DIALECT).result_processor(_DIALECT, None)
    if process is None:
        return _as_read
    decode: Callable[[Any], Any] = process
    return decode


def _as_read(value: Any) -> Any:
    return value


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
