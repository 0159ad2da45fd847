"""`rallypoint keys rotate-encryption`: every sealed value re-encrypted under the newest
key of RALLYPOINT_ENCRYPTION_KEYS (and plaintext left from before keys were set, sealed).

Table by table, in id order, `batch` rows per transaction. A row is written only if the
value read is still there (`WHERE id = :id AND col = :old`), so a value the running
service changed meanwhile is left alone; it was written under the newest key anyway.
Values already under the newest key are skipped: stopping and starting again resumes
where it was, at the cost of reading the rows done. The blind index key is resealed
last; the index values themselves never change (the index key does not rotate). Then
the supporter search terms are made again (storage/search_terms.py) if they are the plain
hashes made without keys (the first rotation); keyed ones never change.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    Column,
    Table,
    Text,
    and_,
    bindparam,
    func,
    or_,
    select,
    type_coerce,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlmodel import SQLModel

from storage.crypto import INDEX_PREFIX, Crypto, is_sealed, sealed_key_id
from storage.crypto_setup import current_index_key, reseal_index_key, setup_encryption
from storage.db import truncate_wal
from storage.field_values import VALUES as FIELD_VALUES
from storage.field_values import read_value, stored_row
from storage.models import CustomField
from storage.sealed_types import (
    AddressCopy,
    IndexedAddress,
    SealedJSON,
    SealedText,
    open_pair,
    seal_pair,
)
from storage.search_terms import rebuild_search_terms, terms_current

Progress = Callable[[str], None]


@dataclass
class RotationReport:
    rows_read: int = 0
    values_written: int = 0
    seconds: float = 0.0
    per_table: dict[str, int] = field(default_factory=dict)

    @property
    def rows_per_second(self) -> float:
        return self.rows_read / self.seconds if self.seconds else 0.0


def _raw(column: Column[Any]) -> Any:
    """The column as stored (no sealing or decrypting on the way)."""
    return type_coerce(column, Text)


def sealed_tables() -> list[tuple[Table, list[Column[Any]]]]:
    """Every table with a sealed column, and those columns (from the models)."""
    kinds = (SealedText, SealedJSON, IndexedAddress, AddressCopy)
    found = []
    for table in SQLModel.metadata.sorted_tables:
        columns = [c for c in table.columns if isinstance(c.type, kinds)]
        if columns:
            found.append((table, columns))
    return found


def _fresh(crypto: Crypto, column: Column[Any], stored: str | None, row: dict[str, Any]) -> Any:
    """The value to write for `column` (None: leave it as it is)."""
    kind = column.type
    if isinstance(kind, IndexedAddress):
        sealed = row.get(f"{column.key}_sealed")
        if not stored:
            return None
        if not stored.startswith(INDEX_PREFIX):  # plaintext from before keys were set
            return stored
        if sealed is None or sealed_key_id(sealed) == crypto.newest_id:
            return None
        return crypto.open(f"{kind.label}|{stored}", sealed)
    if isinstance(kind, AddressCopy):
        if not stored or (is_sealed(stored) and sealed_key_id(stored) == crypto.newest_id):
            return None
        return open_pair(kind.label, stored) if is_sealed(stored) else stored
    if not stored or (isinstance(kind, SealedJSON) and stored in ("[]", "{}", "null")):
        return None
    if isinstance(kind, SealedText) and stored in kind.plain:
        return None  # a marker compared in SQL: stays plain
    if is_sealed(stored):
        if sealed_key_id(stored) == crypto.newest_id:
            return None
        return crypto.open(kind.label, stored)  # type: ignore[attr-defined]
    return stored  # plaintext


async def _rotate_batch(
    conn: AsyncConnection,
    crypto: Crypto,
    table: Table,
    columns: list[Column[Any]],
    after: Any,
    batch: int,
) -> tuple[int, int, Any]:
    """One batch: (rows read, values written, the last id)."""
    key = table.c.id
    extra = [table.c[f"{c.key}_sealed"] for c in columns if isinstance(c.type, IndexedAddress)]
    wanted = [*columns, *extra]
    stmt = select(key, *(_raw(c).label(c.key) for c in wanted)).order_by(key).limit(batch)
    if after is not None:
        stmt = stmt.where(key > after)
    rows = [dict(r._mapping) for r in await conn.execute(stmt)]
    written = 0
    for column in columns:
        params = []
        for row in rows:
            plain = _fresh(crypto, column, row[column.key], row)
            if plain is not None:
                params.append(_params(crypto, column, row, plain))
        if params:
            await conn.execute(_update(table, column), params)
            written += len(params)
    return len(rows), written, rows[-1]["id"] if rows else None


def _params(crypto: Crypto, column: Column[Any], row: dict[str, Any], plain: str) -> dict[str, Any]:
    found = {"b_id": row["id"], "b_old": row[column.key]}
    kind = column.type
    if isinstance(kind, IndexedAddress):
        index = crypto.blind(plain)
        return {**found, "b_new": index, "b_sealed": crypto.seal(f"{kind.label}|{index}", plain)}
    if isinstance(kind, AddressCopy):
        found["b_new"] = seal_pair(crypto, kind.label, plain)
        return found
    found["b_new"] = crypto.seal(kind.label, plain)  # type: ignore[attr-defined]
    return found


def _update(table: Table, column: Column[Any]) -> Any:
    """UPDATE of one column by id, only where it still holds what was read."""
    values: dict[str, Any] = {column.key: bindparam("b_new", type_=Text)}
    if isinstance(column.type, IndexedAddress):
        values[f"{column.key}_sealed"] = bindparam("b_sealed", type_=Text)
    return (
        update(table)
        .where(table.c.id == bindparam("b_id"), _raw(column) == bindparam("b_old", type_=Text))
        .values(values)
    )


def _search_progress(progress: Progress | None) -> Callable[[int], None] | None:
    if progress is None:
        return None
    return lambda done: progress(f"search index: {done} supporters")


async def rotate_encryption(
    engine: AsyncEngine,
    raw_keys: str | None,
    *,
    batch: int = 1000,
    progress: Progress | None = None,
) -> RotationReport:
    """Re-encrypt every sealed value under the newest key (see the module docstring)."""
    crypto = await setup_encryption(engine, raw_keys, allow_plaintext=True)
    if crypto is None:
        raise ValueError("RALLYPOINT_ENCRYPTION_KEYS is unset: nothing to rotate to")
    report = RotationReport()
    started = time.perf_counter()
    for table, columns in sealed_tables():
        after: Any = None
        done = 0
        while True:
            async with engine.begin() as conn:
                read, written, after = await _rotate_batch(
                    conn, crypto, table, columns, after, batch
                )
            if not read:
                break
            done += read
            report.rows_read += read
            report.values_written += written
            if progress is not None:
                progress(
                    f"{table.name}: {done} rows checked, {report.values_written} values rewritten"
                )
        report.per_table[table.name] = done
    report.per_table["supporter_field_values"] = await _rotate_field_values(
        engine, crypto, batch, report, progress
    )
    async with engine.begin() as conn:
        await reseal_index_key(conn, crypto, await current_index_key(conn, crypto))
    # Search terms made before keys were set are plain hashes of names and numbers; keyed
    # ones stay as they are (the index key does not rotate).
    if not await terms_current(engine):
        await rebuild_search_terms(engine, progress=_search_progress(progress))
    # The pages that held the old values (plaintext, the first time) leave the WAL too.
    await truncate_wal(engine)
    report.seconds = time.perf_counter() - started
    return report


async def _rotate_field_values(
    engine: AsyncEngine,
    crypto: Crypto,
    batch: int,
    report: RotationReport,
    progress: Progress | None,
) -> int:
    """Custom field values (storage/field_values.py): sealed in Python with their row's
    supporter and field bound in, so not a column type the loop above knows. Plaintext
    values get their blind index and sealed copy; older keys' values are sealed again
    (the index stays: the index key does not rotate). Keyed by (supporter, field)."""
    values = FIELD_VALUES
    names = CustomField.__table__  # type: ignore[attr-defined]
    sid, fid = values.c.supporter_id, values.c.field_id
    done, after = 0, None
    while True:
        stmt = (
            select(sid, fid, names.c.name, values.c.value, values.c.value_sealed)
            .join(names, names.c.id == fid)
            .order_by(sid, fid)
            .limit(batch)
        )
        if after is not None:
            stmt = stmt.where(or_(sid > after[0], and_(sid == after[0], fid > after[1])))
        async with engine.begin() as conn:
            rows = list(await conn.execute(stmt))
            params = [p for row in rows if (p := _field_params(crypto, *row)) is not None]
            if params:
                await conn.execute(
                    update(values)
                    .where(
                        sid == bindparam("b_sid"),
                        fid == bindparam("b_fid"),
                        values.c.value == bindparam("b_old"),
                        func.coalesce(values.c.value_sealed, "") == bindparam("b_old_sealed"),
                    )
                    .values(value=bindparam("b_value"), value_sealed=bindparam("b_sealed")),
                    params,
                )
        if not rows:
            return done
        after = (rows[-1][0], rows[-1][1])
        done += len(rows)
        report.rows_read += len(rows)
        report.values_written += len(params)
        if progress is not None:
            progress(
                f"supporter_field_values: {done} rows checked, "
                f"{report.values_written} values rewritten"
            )


def _field_params(
    crypto: Crypto, supporter_id: int, field_id: int, name: str, value: str, sealed: str | None
) -> dict[str, Any] | None:
    if sealed is not None and sealed_key_id(sealed) == crypto.newest_id:
        return None
    plain = read_value(supporter_id, field_id, value, sealed)
    new = stored_row(crypto, supporter_id, field_id, name, plain)
    return {
        "b_sid": supporter_id,
        "b_fid": field_id,
        "b_old": value,
        "b_old_sealed": sealed or "",
        "b_value": new["value"],
        "b_sealed": new["value_sealed"],
    }
