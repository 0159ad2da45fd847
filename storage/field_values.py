"""Where supporters' custom field values are read and written: the only module that touches
`supporter_field_values` (routing/people/fields.py checks values before they get here), so
encryption at rest has one place to go.

Without keys a value is stored as it is, in `value`. With RALLYPOINT_ENCRYPTION_KEYS set,
`value` holds the value's blind index (`b1:` HMAC-SHA256 of the field's name and the
canonical value, under the index key) and `value_sealed` the value, AES-256-GCM sealed with
its supporter and field bound in as associated data (`FIELD_AAD`): a sealed value copied
to another supporter's row, or another field, does not decrypt. An audience filter
(`fields: {county: "Kisumu"}`) blinds the values it looks for, so it stays one equality on
the (field_id, value) index. Filters are equality only (any of the listed values), so no
range query ever needs the plaintext. A value stored before keys were set (no
`value_sealed`) is read as it is; `keys rotate-encryption` seals it (`storage.rotation`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from sqlalchemy import ColumnElement, delete, exists, insert, select
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.crypto import Crypto, UndecryptableError, active
from storage.models import CustomField, Supporter, SupporterFieldValue

VALUES = SupporterFieldValue.__table__  # type: ignore[attr-defined]
LABEL = "supporter_field_values.value"
# In Session.info: {field id: name} of the fields this session wrote values of (an import
# writes many rows in one session; within it, an id names one field).
FIELD_NAMES = "field_values_field_names"


def field_aad(supporter_id: int, field_id: int) -> str:
    """The associated data of one row's sealed value: its column, supporter and field."""
    return f"{LABEL}|{supporter_id}|{field_id}"


def field_index(crypto: Crypto, field_name: str, value: str) -> str:
    """The blind index of a canonical `value` of the field `field_name` (equal values of
    one field, equal indexes; the same value in two fields, different ones)."""
    return crypto.blind(f"field:{field_name}\x00{value}")


def stored_row(
    crypto: Crypto | None, supporter_id: int, field_id: int, field_name: str, value: str
) -> dict[str, object]:
    """The columns of one value as stored (sealed and indexed when `crypto`)."""
    row: dict[str, object] = {"supporter_id": supporter_id, "field_id": field_id}
    if crypto is None:
        return {**row, "value": value, "value_sealed": None}
    return {
        **row,
        "value": field_index(crypto, field_name, value),
        "value_sealed": crypto.seal(field_aad(supporter_id, field_id), value),
    }


def read_value(supporter_id: int, field_id: int, value: str, sealed: str | None) -> str:
    """A stored value as plaintext (UndecryptableError when it cannot be opened, never the
    index or another row's value)."""
    if sealed is None:
        # Plaintext (written without keys): with keys every row is written sealed, so a
        # text value that merely starts like an index ("b1:...") is still the value.
        return value
    crypto = active()
    if crypto is None:
        raise UndecryptableError(f"{LABEL} is encrypted and RALLYPOINT_ENCRYPTION_KEYS is unset")
    return crypto.open(field_aad(supporter_id, field_id), sealed)


async def set_values(
    session: AsyncSession, supporter_id: int, values: Mapping[int, str | None]
) -> None:
    """Write checked values (`check_values`) of one supporter; None removes the value."""
    await write_values(session, {supporter_id: values})


async def write_values(
    session: AsyncSession,
    values: Mapping[int, Mapping[int, str | None]],
    *,
    new_supporters: bool = False,
) -> None:
    """Write checked values of many supporters ({supporter id: {field id: value}}; None
    removes a value): every write of `supporter_field_values` goes through here.
    `new_supporters`: they have no values yet, so nothing is deleted first."""
    if not values:
        return
    if not new_supporters:
        for supporter_id, given in values.items():
            if given:
                await session.execute(
                    delete(VALUES).where(
                        VALUES.c.supporter_id == supporter_id, VALUES.c.field_id.in_(list(given))
                    )
                )
    kept = [
        (supporter_id, fid, value)
        for supporter_id, given in values.items()
        for fid, value in given.items()
        if value is not None
    ]
    if not kept:
        return
    crypto = active()
    names: dict[int, str] = session.info.setdefault(FIELD_NAMES, {})
    wanted = {fid for _, fid, _ in kept}
    if crypto is not None and not names.keys() >= wanted:
        found = await session.execute(
            select(col(CustomField.id), col(CustomField.name)).where(
                col(CustomField.id).in_(list(wanted))
            )
        )
        names.update({int(fid): str(name) for fid, name in found})
    rows = [
        stored_row(crypto, supporter_id, fid, names.get(fid, ""), value)
        for supporter_id, fid, value in kept
    ]
    await session.execute(insert(VALUES), rows)


async def values_by_supporter(
    session: AsyncSession, supporter_ids: Iterable[int], *, only: Iterable[str] | None = None
) -> dict[int, dict[str, str]]:
    """{supporter id: {field name: value}} for each id (empty dict when none); `only`:
    these fields only."""
    ids = list(supporter_ids)
    out: dict[int, dict[str, str]] = {i: {} for i in ids}
    if not ids:
        return out
    query = (
        select(
            VALUES.c.supporter_id,
            VALUES.c.field_id,
            col(CustomField.name),
            VALUES.c.value,
            VALUES.c.value_sealed,
        )
        .join(CustomField, col(CustomField.id) == VALUES.c.field_id)
        .where(VALUES.c.supporter_id.in_(ids))
        .order_by(col(CustomField.name))
    )
    if only is not None:
        query = query.where(col(CustomField.name).in_(list(only)))
    rows = await session.execute(query)
    for supporter_id, field_id, name, value, sealed in rows:
        out[supporter_id][name] = read_value(supporter_id, field_id, value, sealed)
    return out


def filter_conditions(wanted: Mapping[str, Sequence[str]]) -> list[ColumnElement[bool]]:
    """WHERE conditions on `supporters` for a checked `fields` filter: an EXISTS each, served
    by the (field_id, value) index (blind indexes of the wanted values with keys set)."""
    crypto = active()
    conditions: list[ColumnElement[bool]] = []
    for name, values in wanted.items():
        field_id = select(col(CustomField.id)).where(col(CustomField.name) == name)
        stored = list(values) if crypto is None else [field_index(crypto, name, v) for v in values]
        conditions.append(
            exists().where(
                VALUES.c.supporter_id == col(Supporter.id),
                VALUES.c.field_id == field_id.scalar_subquery(),
                VALUES.c.value.in_(stored),
            )
        )
    return conditions


async def delete_values_of(session: AsyncSession, supporter_id: int) -> None:
    """Every custom field value of one supporter (erasure)."""
    await session.execute(delete(VALUES).where(VALUES.c.supporter_id == supporter_id))
