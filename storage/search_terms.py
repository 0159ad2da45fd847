"""Supporter search: the terms each supporter is found by, kept in `supporter_search_terms`.

A supporter's terms (`terms_of`):
- `n`: every prefix (1 to 12 letters) of every word of the name, case and accents folded
  ("Zoë Núñez" -> z, zo, zoe, n, nu, nun, nune, nunez); a word that is a number is skipped (a
  supporter named after their number is found by the number);
- `p`: every ending of 4 digits or more of a phone number (+14155550100 -> 0100, 50100,
  ..., 14155550100), so a number is found by its last digits, with or without the
  country code;
- `m`: every prefix (up to 64 characters) of an email address and of every word before
  its @ (ada.l@x.org -> a, ad, ada, ada., ..., ada.l@x.org, l);
- `d`: an email's domain (x.org); `a`: each other address as a whole (a Telegram chat id).
A search (`search_terms`) needs every word of the query to start a word of the name, or
the query to be one of the other terms. Each term is stored as a signed 64-bit number:
an HMAC-SHA256 under the blind index key when RALLYPOINT_ENCRYPTION_KEYS is set (the
table then holds no name or number, only which supporters share a term), a BLAKE2b hash
without keys (the names are in the supporters table as they are anyway).

The index is rewritten for a supporter whenever their name or an address changes: ORM
flushes do it themselves (the listener below); the set-based paths that insert with Core
call `term_rows` (inbound ingest) or `refresh_terms`; `rebuild_search_terms` rewrites
everyone (the migration's backfill, key rotation, a benchmark's seeder after bulk loading).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import Table, delete, event, func, inspect, literal, select, union
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Session

from storage.crypto import Crypto, active
from storage.models import Supporter, SupporterAddress, SupporterSearchTerm

TERMS: Table = SupporterSearchTerm.__table__  # type: ignore[attr-defined]
SUPPORTERS: Table = Supporter.__table__  # type: ignore[attr-defined]
ADDRESSES: Table = SupporterAddress.__table__  # type: ignore[attr-defined]

# A word matches by its first this many letters (bounds the terms per name).
PREFIX_MAX = 12
# An email address matches by its start, up to this many characters.
EMAIL_PREFIX_MAX = 64
# A phone number matches by an ending of at least this many digits.
PHONE_SUFFIX_MIN = 4
_WORD = re.compile(r"\w+")
_E164 = re.compile(r"\+(\d{4,15})")
_PHONE_TYPED = re.compile(r"[\d\s+().\-/]+")


def fold(text: str) -> str:
    """Case and accents folded: "Zoë" and "ZOE" are the same word."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def words(text: str) -> list[str]:
    return _WORD.findall(fold(text))


def term(kind: str, value: str) -> int:
    """The stored number of one term (keyed when encryption at rest is on)."""
    return _term(active(), kind, value)


def _term(crypto: Crypto | None, kind: str, value: str) -> int:
    message = f"search\x00{kind}\x00{value}".encode()
    if crypto is not None:
        digest = crypto.keyed_digest(message)
    else:
        digest = hashlib.blake2b(message, digest_size=8).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _prefixes(kind: str, word: str) -> Iterable[tuple[str, str]]:
    for n in range(1, min(len(word), PREFIX_MAX) + 1):
        yield kind, word[:n]


def _plain_terms(name: str, addresses: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    found = {t for w in words(name) if not w.isdigit() for t in _prefixes("n", w)}
    for _channel, address in addresses:
        if not address:
            continue
        phone = _E164.fullmatch(address)
        if phone is not None:
            digits = phone.group(1)
            found |= {("p", digits[-n:]) for n in range(PHONE_SUFFIX_MIN, len(digits) + 1)}
            continue
        folded = fold(address)
        found.add(("a", folded))
        if "@" in folded:
            local, _, domain = folded.rpartition("@")
            found |= {("m", folded[:n]) for n in range(1, min(len(folded), EMAIL_PREFIX_MAX) + 1)}
            found |= {t for w in words(local) for t in _prefixes("m", w)}
            found.add(("d", domain))
    return found


def terms_of(name: str, addresses: Iterable[tuple[str, str]]) -> set[int]:
    """Every term a supporter with this name and these (channel, address) is found by."""
    crypto = active()
    return {_term(crypto, k, v) for k, v in _plain_terms(name, addresses)}


def term_rows(
    supporter_id: int, name: str, addresses: Iterable[tuple[str, str]]
) -> list[dict[str, int]]:
    """The rows to insert into `supporter_search_terms` for one new supporter."""
    return [{"term": t, "supporter_id": supporter_id} for t in terms_of(name, addresses)]


def _query_digits(q: str) -> set[str]:
    """The endings a typed phone number is looked for by: its digits, and without a +
    also its digits after a trunk or international prefix (0712..., 00254...)."""
    if not _PHONE_TYPED.fullmatch(q):
        return set()
    digits = re.sub(r"\D", "", q)
    found = {digits}
    if not q.lstrip().startswith("+"):
        found.add(digits.lstrip("0"))
    return {d for d in found if len(d) >= PHONE_SUFFIX_MIN}


def search_terms(q: str) -> tuple[list[int], list[int]]:
    """What a search for `q` looks up: (terms that must all match: one per word, each the
    start of a word of the name; terms any one of which is enough: a phone number's
    ending, a whole address, the start of an email's word). Both empty: nothing to find."""
    typed = q.strip()
    found = words(typed)
    any_of: set[int] = set()
    any_of |= {term("p", digits) for digits in _query_digits(typed)}
    folded = fold(typed)
    if folded:
        any_of.add(term("a", folded))
    if folded and not any(ch.isspace() for ch in folded):
        any_of.add(term("m", folded[:EMAIL_PREFIX_MAX]))  # the start of an email
        any_of.add(term("d", folded.lstrip("@")))  # an email's domain
    if len(found) == 1 and not found[0].isdigit():
        any_of.add(term("m", found[0][:PREFIX_MAX]))  # the start of a word of an email
    # A number is looked for as a number: words that are digits are in no name's terms.
    all_of: set[int] = set()
    if found and not any(w.isdigit() for w in found):
        all_of = {term("n", w[:PREFIX_MAX]) for w in found}
    return sorted(all_of), sorted(any_of)


def matching_supporters(q: str) -> Any | None:
    """SELECT the ids of the supporters `q` finds (None: `q` has nothing to look for).
    Every branch reads the primary key of `supporter_search_terms`."""
    all_of, any_of = search_terms(q)
    if len(all_of) <= 1:  # one word: any of its terms, in one lookup
        found = sorted({*all_of, *any_of})
        return select(TERMS.c.supporter_id).where(TERMS.c.term.in_(found)) if found else None
    # Supporters with every word: their rows among the words' terms, one per word.
    every_word = (
        select(TERMS.c.supporter_id)
        .where(TERMS.c.term.in_(all_of))
        .group_by(TERMS.c.supporter_id)
        .having(func.count() == literal(len(all_of)))
    )
    if not any_of:
        return every_word
    return union(select(TERMS.c.supporter_id).where(TERMS.c.term.in_(any_of)), every_word)


def _current(execute: Callable[[Any], Any], ids: Sequence[int]) -> list[dict[str, int]]:
    """The term rows of these supporters as they are now in the database."""
    names = {
        int(i): n
        for i, n in execute(
            select(SUPPORTERS.c.id, SUPPORTERS.c.name).where(SUPPORTERS.c.id.in_(ids))
        )
    }
    addresses: dict[int, list[tuple[str, str]]] = {}
    held = select(ADDRESSES.c.supporter_id, ADDRESSES.c.channel, ADDRESSES.c.address).where(
        ADDRESSES.c.supporter_id.in_(ids)
    )
    for sid, channel, address in execute(held):
        addresses.setdefault(int(sid), []).append((channel, address))
    rows: list[dict[str, int]] = []
    for sid, name in names.items():
        rows.extend(term_rows(sid, name or "", addresses.get(sid, [])))
    return rows


def refresh_terms_sync(connection: Connection | Session, ids: Iterable[int]) -> None:
    """Rewrite the terms of these supporters from their name and addresses as stored (in
    the caller's transaction). A supporter that no longer exists keeps none."""
    wanted = sorted(set(ids))
    if not wanted:
        return
    rows = _current(connection.execute, wanted)
    connection.execute(delete(TERMS).where(TERMS.c.supporter_id.in_(wanted)))
    if rows:
        # Two transactions refreshing one supporter at once (PostgreSQL): the other's rows,
        # inserted after this delete read, are the same terms; keep them, do not fail.
        bind = connection if isinstance(connection, Connection) else connection.get_bind()
        make = postgresql_insert if bind.dialect.name == "postgresql" else sqlite_insert
        connection.execute(make(TERMS).on_conflict_do_nothing(), rows)


async def refresh_terms(session: Any, ids: Iterable[int]) -> None:
    """`refresh_terms_sync` from an AsyncSession or AsyncConnection."""
    wanted = sorted(set(ids))
    if wanted:
        await session.run_sync(refresh_terms_sync, wanted)


Progress = Callable[[int], None]


_LOAD = "search_terms_load"
_BY_SUPPORTER = "ix_supporter_search_terms_supporter_id"


def rebuild_sync(
    connection: Connection, *, batch: int = 5000, progress: Progress | None = None
) -> int:
    """Every supporter's terms made again, in the caller's transaction; returns how many
    supporters. The terms are collected in a temporary table, `batch` supporters at a
    time, then inserted in one statement in key order: a B-tree filled in order, where
    inserting each batch's random hashes into the index would cost a page read per row."""
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:  # room for the sort and the index build (256 MiB), then back as it was
        cache = connection.exec_driver_sql("PRAGMA cache_size").scalar_one()
        connection.exec_driver_sql("PRAGMA cache_size = -262144")
    connection.execute(delete(TERMS))
    connection.exec_driver_sql(
        f"CREATE TEMPORARY TABLE {_LOAD} (term BIGINT NOT NULL, supporter_id INTEGER NOT NULL)"
    )
    marks = "?, ?" if connection.dialect.paramstyle == "qmark" else "$1, $2"
    load = f"INSERT INTO {_LOAD} (term, supporter_id) VALUES ({marks})"  # noqa: S608
    after = done = 0
    while True:
        ids = [
            int(i)
            for (i,) in connection.execute(
                select(SUPPORTERS.c.id)
                .where(SUPPORTERS.c.id > after)
                .order_by(SUPPORTERS.c.id)
                .limit(batch)
            )
        ]
        if not ids:
            break
        rows = [(r["term"], r["supporter_id"]) for r in _current(connection.execute, ids)]
        if rows:
            connection.exec_driver_sql(load, rows)
        after, done = ids[-1], done + len(ids)
        if progress is not None:
            progress(done)
    # The supporter_id index is made after the rows (sorted once), not row by row at
    # random places.
    by_supporter = next(i for i in TERMS.indexes if i.name == _BY_SUPPORTER)
    by_supporter.drop(connection)
    connection.exec_driver_sql(
        "INSERT INTO supporter_search_terms (term, supporter_id) "  # noqa: S608
        f"SELECT term, supporter_id FROM {_LOAD} ORDER BY term, supporter_id"
    )
    by_supporter.create(connection)
    connection.exec_driver_sql(f"DROP TABLE {_LOAD}")
    if sqlite:
        connection.exec_driver_sql(f"PRAGMA cache_size = {int(cache)}")
    return done


async def rebuild_search_terms(
    engine: AsyncEngine, *, batch: int = 5000, progress: Progress | None = None
) -> int:
    """Every supporter's terms made again from their names and addresses, in one
    transaction (`rebuild_sync`); returns how many supporters. What a benchmark seeder
    calls after bulk loading supporters and addresses with plain INSERTs; the migration,
    the first start with encrypted names and the first key rotation call it too."""
    async with engine.begin() as conn:
        done: int = await conn.run_sync(rebuild_sync, batch=batch, progress=progress)
    return done


async def terms_current(engine: AsyncEngine) -> bool:
    """Whether the stored terms are those the current keys make (checked on one supporter
    that has terms): not after keys are set on a database indexed without them."""
    async with engine.connect() as conn:
        first = (await conn.execute(select(TERMS.c.supporter_id).limit(1))).first()
        if first is None:
            return False
        sid = int(first[0])
        stored = {
            int(t)
            for (t,) in await conn.execute(select(TERMS.c.term).where(TERMS.c.supporter_id == sid))
        }
        made = await conn.run_sync(lambda c: _current(c.execute, [sid]))
    return stored == {r["term"] for r in made}


async def fill_if_empty(engine: AsyncEngine) -> None:
    """Build the index when there are supporters and no terms (a database whose migration
    could not read the names: they were encrypted, and the keys come at start-up)."""
    async with engine.connect() as conn:
        someone = (await conn.execute(select(SUPPORTERS.c.id).limit(1))).first()
        indexed = (await conn.execute(select(TERMS.c.term).limit(1))).first()
    if someone is not None and indexed is None:
        await rebuild_search_terms(engine)


# ORM writes: the supporters whose name or addresses a flush changed get their terms
# rewritten in the same transaction, right after it.
_ADDRESS_FIELDS = ("address", "channel", "supporter_id")


def _touched(session: Session) -> set[int]:
    ids: set[int] = set()
    for row in session.new:
        if isinstance(row, Supporter) and row.id is not None:
            ids.add(row.id)
        elif isinstance(row, SupporterAddress):
            ids.add(row.supporter_id)
    for row in session.dirty:
        if isinstance(row, Supporter):
            if row.id is not None and session_changed(row, ("name",)):
                ids.add(row.id)
        elif isinstance(row, SupporterAddress) and session_changed(row, _ADDRESS_FIELDS):
            ids.add(row.supporter_id)
            ids.update(_old_values(row, "supporter_id"))
    for row in session.deleted:
        if isinstance(row, SupporterAddress):
            ids.add(row.supporter_id)
    return ids


def session_changed(row: Any, fields: Sequence[str]) -> bool:
    attrs = inspect(row).attrs
    return any(attrs[f].history.has_changes() for f in fields)


def _old_values(row: Any, field: str) -> list[int]:
    return [int(v) for v in inspect(row).attrs[field].history.deleted if v is not None]


@event.listens_for(Session, "after_flush")
def _refresh_after_flush(session: Session, _context: Any) -> None:
    ids = _touched(session)
    if ids:
        refresh_terms_sync(session.connection(), ids)
