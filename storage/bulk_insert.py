"""Bulk inserts through the driver's executemany, inside an ORM session's transaction."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncConnection


class BulkWriter:
    """Inserts through the driver's executemany, within the session's transaction.

    SQLAlchemy's per-row parameter processing costs more than the database's work at this
    volume, so values are bound once per batch with each column's own bind processor (stored
    exactly as the ORM stores them) and rows are plain tuples.
    """

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self.dialect = conn.dialect

    def bind(self, table: Table, column: str, value: Any) -> Any:
        if value is None:
            return None
        processor = self.encoder(table, column)
        return processor(value) if processor else value

    def encoder(self, table: Table, column: str) -> Callable[[Any], Any] | None:
        """The column's bind processor, to encode a value per row (None: stored as given),
        e.g. a sealed column (storage/sealed_types.py)."""
        kind = table.c[column].type.dialect_impl(self.dialect)
        processor: Callable[[Any], Any] | None = kind.bind_processor(self.dialect)
        return processor

    async def insert(
        self,
        table: Table,
        columns: tuple[str, ...],
        rows: list[tuple[Any, ...]],
        *,
        on_conflict_do_nothing: bool = False,
    ) -> None:
        """Insert `rows` (tuples in `columns` order); with `on_conflict_do_nothing`, rows
        that would break a unique constraint are left out (SQLite and PostgreSQL syntax)."""
        if not rows:
            return
        quote = self.dialect.identifier_preparer.quote
        style = self.dialect.paramstyle
        if style == "qmark":
            marks = ", ".join("?" for _ in columns)
        elif style == "numeric_dollar":  # asyncpg
            marks = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
        elif style in ("format", "pyformat"):
            marks = ", ".join("%s" for _ in columns)
        else:
            raise NotImplementedError(f"bulk insert for paramstyle {style}")
        names = ", ".join(quote(c) for c in columns)
        # Names come from our own table metadata, never from input.
        sql = f"INSERT INTO {quote(table.name)} ({names}) VALUES ({marks})"  # noqa: S608
        if on_conflict_do_nothing:
            sql += " ON CONFLICT DO NOTHING"
        await self.conn.exec_driver_sql(sql, rows)
