"""Where supporters' custom field values are read and written: the only module that touches
`supporter_field_values` (routing/people/fields.py checks values before they get here), so
encryption at rest has one place to go."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from sqlalchemy import ColumnElement, delete, exists
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.bulk_insert import BulkWriter
from storage.models import CustomField, Supporter, SupporterFieldValue

VALUES = SupporterFieldValue.__table__  # type: ignore[attr-defined]


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
    writer = BulkWriter(await session.connection())
    encode = writer.encoder(VALUES, "value")
    rows = [
        (supporter_id, fid, encode(value) if encode else value)
        for supporter_id, given in values.items()
        for fid, value in given.items()
        if value is not None
    ]
    await writer.insert(VALUES, ("supporter_id", "field_id", "value"), rows)


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
        select(VALUES.c.supporter_id, col(CustomField.name), VALUES.c.value)
        .join(CustomField, col(CustomField.id) == VALUES.c.field_id)
        .where(VALUES.c.supporter_id.in_(ids))
        .order_by(col(CustomField.name))
    )
    if only is not None:
        query = query.where(col(CustomField.name).in_(list(only)))
    rows = await session.execute(query)
    for supporter_id, name, value in rows:
        out[supporter_id][name] = value
    return out


def filter_conditions(wanted: Mapping[str, Sequence[str]]) -> list[ColumnElement[bool]]:
    """WHERE conditions on `supporters` for a checked `fields` filter: an EXISTS each, served
    by the (field_id, value) index."""
    conditions: list[ColumnElement[bool]] = []
    for name, values in wanted.items():
        field_id = select(col(CustomField.id)).where(col(CustomField.name) == name)
        conditions.append(
            exists().where(
                VALUES.c.supporter_id == col(Supporter.id),
                VALUES.c.field_id == field_id.scalar_subquery(),
                VALUES.c.value.in_(list(values)),
            )
        )
    return conditions


async def delete_values_of(session: AsyncSession, supporter_id: int) -> None:
    """Every custom field value of one supporter (erasure)."""
    await session.execute(delete(VALUES).where(VALUES.c.supporter_id == supporter_id))
