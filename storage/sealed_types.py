"""Column types that encrypt at rest when RALLYPOINT_ENCRYPTION_KEYS is set.

A column opts in with one line in `storage/models.py` (label: "<table>.<column>"):

    note: str | None = sealed_text("rsvps.note")                      # free text
    body: str = sealed_text("messages.body", nullable=False)
    custom_fields: dict[str, Any] = sealed_json("supporters.custom_fields", {})  # JSON
    address: str = address_copy()            # a copy of a supporter's address

and its migration makes the column TEXT (sealed values are longer than what they hold).
Nothing else changes: ORM and Core reads decrypt, writes (ORM, Core, BulkWriter.bind /
encoder, the SQLite lane) encrypt, `keys rotate-encryption` finds the column by its type.
What a sealed column cannot do is be compared or sorted in SQL (every value has its own
nonce): filter such columns in Python, or add a blind index as `IndexedAddress` does.
Supporters' addresses themselves are `IndexedAddress` + `SealedAddress` (lookups).

The label (`table.column`) is bound into each value as associated data. Without keys
the types store exactly what plain Text/JSON columns would (plaintext). With keys, a
sealed value read without the key that sealed it raises `UndecryptableError`; `serve`
checks this at start-up (`storage.crypto_setup`), never per request.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import Column, ColumnElement, String, Text, func, literal, type_coerce
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field

from storage.crypto import (
    INDEX_PREFIX,
    SEALED_PREFIX,
    Crypto,
    UndecryptableError,
    active,
    is_sealed,
)

# JSON values that say nothing: stored plain, so retention can compare them in SQL.
_EMPTY_JSON = {"[]", "{}", "null"}
# json.dumps(value, separators=(",", ":"), ensure_ascii=False), without a new encoder per call.
_JSON_TEXT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_EMPTY_TYPES: dict[type, str] = {list: "[]", dict: "{}"}


def bind_by_stored(self: Any, value: Any, dialect: Any) -> Any:
    """The bind processor of a sealed type: its `stored(value)`, which needs no dialect.
    The SQLite lane calls `stored` itself for a type whose bind processor this is (a
    subclass that binds otherwise goes through SQLAlchemy's processor there too)."""
    return self.stored(value)


def _open(label: str, value: str) -> str:
    crypto = active()
    if crypto is None:
        raise UndecryptableError(f"{label} is encrypted and RALLYPOINT_ENCRYPTION_KEYS is unset")
    return crypto.open(label, value)


class SealedText(TypeDecorator[str]):
    """Text sealed with AES-256-GCM under the newest key; "" and None stay as they are, and
    so do the `plain` values: markers Rallypoint writes itself and compares in SQL (an
    error column's "cancelled"), which say nothing about anyone."""

    impl = Text
    cache_ok = True
    fresh_per_value = True

    def __init__(self, label: str, plain: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.label = label
        self.plain = plain

    process_bind_param = bind_by_stored

    def stored(self, value: str | None) -> str | None:
        """What is stored for `value` (the bind processor without a dialect: the SQLite
        lane calls it per value)."""
        crypto = active()
        if crypto is None or not value or value in self.plain:
            return value
        return crypto.seal(self.label, value)

    def process_result_value(self, value: str | None, dialect: Any) -> str | None:
        if value is None or not is_sealed(value):
            return value
        return _open(self.label, value)


class SealedJSON(TypeDecorator[Any]):
    """JSON as text, sealed like `SealedText` unless it is empty (`[]`, `{}`, null)."""

    impl = Text
    cache_ok = True
    fresh_per_value = True

    def __init__(self, label: str) -> None:
        super().__init__()
        self.label = label

    process_bind_param = bind_by_stored

    def stored(self, value: Any) -> str | None:
        if value is None:
            return None
        if not value and type(value) in _EMPTY_TYPES:  # most rows: no attachments
            return _EMPTY_TYPES[type(value)]
        text = _JSON_TEXT.encode(value)
        crypto = active()
        if crypto is None or text in _EMPTY_JSON:
            return text
        return crypto.seal(self.label, text)

    def process_result_value(self, value: str | None, dialect: Any) -> Any:
        if value is None:
            return None
        if is_sealed(value):
            value = _open(self.label, value)
        return json.loads(value)


class IndexedAddress(TypeDecorator[str]):
    """An address kept as its blind index (`b1:` HMAC) when keys are set, so `==` and
    `IN` compare indexes (the bound value goes through this type too) and the unique
    (channel, address) index holds. Selected, it reads its `<name>_sealed` sibling
    (`SealedAddress`) and decrypts it; without keys both are plaintext / NULL."""

    impl = String(320)
    cache_ok = True

    def __init__(self, label: str) -> None:
        super().__init__()
        self.label = label

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        crypto = active()
        if crypto is None or not value or value.startswith(INDEX_PREFIX):
            return value
        return crypto.blind(value)

    def column_expression(self, colexpr: ColumnElement[Any]) -> ColumnElement[Any]:
        table = getattr(colexpr, "table", None)
        if table is None:
            return colexpr
        sealed = table.c[f"{colexpr.key}_sealed"]
        # Typed as this column, so its result processor decrypts what is read.
        return func.coalesce(sealed + literal(" ", Text) + colexpr, colexpr, type_=self)

    def process_result_value(self, value: str | None, dialect: Any) -> str | None:
        if value is None or not is_sealed(value):
            return value
        return open_pair(self.label, value)


def open_pair(label: str, value: str) -> str:
    """`<sealed> <index>` (an address as `IndexedAddress` reads it): the address. The index
    is bound in, so a sealed address moved next to another index does not decrypt."""
    sealed, _, index = value.partition(" ")
    return _open(f"{label}|{index}", sealed)


def pair_index(value: str) -> str:
    """The blind index of a `<sealed> <index>` pair (what a lookup by address matched)."""
    return value.partition(" ")[2]


def pair_reader(label: str, addresses: Iterable[str]) -> Callable[[str], str]:
    """Reads the rows a lookup by `addresses` found, as stored (`stored_address`): a
    sealed pair is the address whose blind index it carries, with no decryption per row
    (the index is what the lookup matched); a plaintext address is itself; a pair of
    none of them (an address that was given as an index) is decrypted."""
    crypto = active()
    by_index = {crypto.blind(a): a for a in addresses} if crypto is not None else {}

    def read(stored: str) -> str:
        if not is_sealed(stored):
            return stored
        found = by_index.get(pair_index(stored))
        return found if found is not None else open_pair(label, stored)

    return read


def seal_pair(crypto: Crypto, label: str, value: str) -> str:
    index = crypto.blind(value)
    return f"{crypto.seal(f'{label}|{index}', value)} {index}"


def stored_address(column: Any) -> ColumnElement[Any]:
    """An `IndexedAddress` column as stored, not decrypted: `<sealed> <index>` with keys,
    the address without. `AddressCopy` columns take it as it is (fan-out copies every
    member's address with no cryptography per row)."""
    sealed = column.table.c[f"{column.key}_sealed"]
    return type_coerce(func.coalesce(sealed + literal(" ", Text) + column, column), Text)


class AddressCopy(TypeDecorator[str]):
    """A copy of a supporter's address (on a message or a send attempt), stored as
    `IndexedAddress` reads it (`<sealed> <index>`, sealed as supporter_addresses.address)
    so a stored pair can be copied as it is; plaintext without keys."""

    impl = Text
    cache_ok = True
    fresh_per_value = True

    def __init__(self, label: str) -> None:
        super().__init__()
        self.label = label

    process_bind_param = bind_by_stored

    def stored(self, value: str | None) -> str | None:
        crypto = active()
        if crypto is None or not value or value.startswith(SEALED_PREFIX):
            return value
        return seal_pair(crypto, self.label, value)

    def process_result_value(self, value: str | None, dialect: Any) -> str | None:
        if value is None or not is_sealed(value):
            return value
        return open_pair(self.label, value)


def address_copy(*, nullable: bool = True) -> Any:
    """A column holding a copy of a supporter's address (see `AddressCopy`)."""
    return Field(
        default=None if nullable else "",
        sa_column=Column(AddressCopy("supporter_addresses.address"), nullable=nullable),
    )


class SealedAddress(TypeDecorator[str]):
    """The sealed copy of an `IndexedAddress`, bound to its row's index (so an address
    moved to another row fails to decrypt). NULL without keys."""

    impl = Text
    cache_ok = True
    fresh_per_value = True

    def __init__(self, label: str) -> None:
        super().__init__()
        self.label = label

    process_bind_param = bind_by_stored

    def stored(self, value: str | None) -> str | None:
        crypto = active()
        if crypto is None:
            return None
        if not value or value.startswith(SEALED_PREFIX):
            return value or None
        return crypto.seal(f"{self.label}|{crypto.blind(value)}", value)


def sealed_text(label: str, *, nullable: bool = True, plain: tuple[str, ...] = ()) -> Any:
    """A free-text column encrypted at rest (see the module docstring); `plain`: values
    kept as they are (see `SealedText`)."""
    return Field(
        default=None if nullable else "",
        sa_column=Column(SealedText(label, plain), nullable=nullable),
    )


def sealed_json(label: str, default: Any = None) -> Any:
    """A JSON column encrypted at rest."""
    factory = (lambda: list(default)) if isinstance(default, list) else (lambda: default)
    return Field(default_factory=factory, sa_column=Column(SealedJSON(label), nullable=True))
