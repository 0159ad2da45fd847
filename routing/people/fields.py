"""Custom fields: typed fields organizers define on supporters, and their values.

Every read and write of a supporter's stored values goes through storage/field_values.py
(the API, the import, the export, the console, audiences and merge variables), so a change
to how values are stored (encryption at rest) has one place to go; this module checks
definitions and values. Values are kept as canonical text: a
number in its shortest decimal form ("12", "0.5"), a date as YYYY-MM-DD, a choice as the
choice's own spelling.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from routing.people.import_columns import ALIASES, loose
from storage.models import FIELD_TYPES, CustomField

NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
NAME_RULE = "a slug: a lower-case letter, then letters, digits or _ (at most 64)"
MAX_VALUE = 1000
MAX_CHOICES = 200


class FieldValueError(ValueError):
    """A value (or field name) that does not fit; `field` names the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise FieldValueError(name, f"a field name is {NAME_RULE}")
    if loose(name) in ALIASES:
        # The import reads a column of this name as a supporter's own (routing/people/
        # import_columns.py): an exported field would not come back.
        raise FieldValueError(name, "a field name may not be one of the import's columns")
    return name


def check_definition(name: str, type_: str, choices: Sequence[str] | None) -> list[str] | None:
    """The stored choices of a valid definition; FieldValueError naming what is wrong."""
    check_name(name)
    if type_ not in FIELD_TYPES:
        raise FieldValueError(name, f"unknown type {type_!r}; one of {', '.join(FIELD_TYPES)}")
    if type_ != "choice":
        if choices:
            raise FieldValueError(name, "only a choice field has choices")
        return None
    cleaned = list(dict.fromkeys(c.strip() for c in choices or () if c.strip()))
    if not cleaned:
        raise FieldValueError(name, "a choice field needs at least one choice")
    if len(cleaned) > MAX_CHOICES or any(len(c) > 200 for c in cleaned):
        raise FieldValueError(name, f"at most {MAX_CHOICES} choices of 200 characters each")
    return cleaned


def canonical(field: CustomField, raw: Any) -> str | None:
    """The stored text of `raw` for `field`; None clears it. FieldValueError when it does not
    fit the field's type (the message never quotes the value)."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise FieldValueError(field.name, f"a {field.type} value must be a string or number")
    text = str(raw).strip()
    if field.type == "number":
        try:
            number = Decimal(text.replace(",", "") if isinstance(raw, str) else text)
        except InvalidOperation:
            number = Decimal("NaN")
        if not number.is_finite():
            raise FieldValueError(field.name, "not a number")
        out = format(number.normalize(), "f")
        return "0" if out in ("-0", "") else out
    if field.type == "date":
        day = text[:10] if len(text) > 10 and text[10] in "T " else text
        try:
            return date.fromisoformat(day).isoformat()
        except ValueError:
            raise FieldValueError(field.name, "not a date (use YYYY-MM-DD)") from None
    if field.type == "choice":
        for choice in field.choices or ():
            if choice.casefold() == text.casefold():
                return choice
        raise FieldValueError(
            field.name, f"not one of the choices: {', '.join(field.choices or ())}"
        )
    if len(text) > MAX_VALUE:
        raise FieldValueError(field.name, f"at most {MAX_VALUE} characters")
    return text


async def all_fields(session: AsyncSession) -> list[CustomField]:
    return list((await session.exec(select(CustomField).order_by(col(CustomField.name)))).all())


async def fields_by_name(session: AsyncSession) -> dict[str, CustomField]:
    return {f.name: f for f in await all_fields(session)}


async def define_field(
    session: AsyncSession, name: str, type_: str, choices: Sequence[str] | None, now: datetime
) -> CustomField:
    """Add a field (flushed); FieldValueError when invalid or the name is taken."""
    stored = check_definition(name, type_, choices)
    if (await fields_by_name(session)).get(name) is not None:
        raise FieldValueError(name, "a field with this name exists")
    field = CustomField(name=name, type=type_, choices=stored, created_at=now)
    session.add(field)
    await session.flush()
    return field


async def delete_field(session: AsyncSession, name: str) -> bool:
    """Forget a field and every supporter's value of it; False when there is none."""
    field = (await fields_by_name(session)).get(name)
    if field is None:
        return False
    await session.delete(field)
    await session.flush()
    return True


# In Session.info: the fields by name, for a long session that checks many rows (the
# import sets it once instead of reading the fields for every row).
KNOWN_FIELDS = "custom_fields_by_name"


async def check_values(
    session: AsyncSession, given: Mapping[str, Any], known: Mapping[str, CustomField] | None = None
) -> dict[int, str | None]:
    """{field id: canonical value or None (clear)}; FieldValueError naming an unknown field
    or a value that does not fit."""
    if known is None:
        known = session.info.get(KNOWN_FIELDS)
    if known is None:
        known = await fields_by_name(session) if given else {}
    out: dict[int, str | None] = {}
    for name, raw in given.items():
        field = known.get(name)
        if field is None or field.id is None:
            raise FieldValueError(name, "no such custom field (define it with POST /api/v1/fields)")
        out[field.id] = canonical(field, raw)
    return out


async def check_filter(
    session: AsyncSession, given: Mapping[str, Any]
) -> dict[str, tuple[str, ...]]:
    """An audience's `fields` filter with canonical values: {name: (value, …)} (any value of
    one field matches; all fields must). FieldValueError naming a bad field."""
    known = await fields_by_name(session) if given else {}
    out: dict[str, tuple[str, ...]] = {}
    for name, raw in given.items():
        field = known.get(name)
        if field is None:
            raise FieldValueError(name, "no such custom field")
        values = raw if isinstance(raw, list | tuple) else [raw]
        wanted = [canonical(field, v) for v in values]
        if not wanted or any(v is None for v in wanted):
            raise FieldValueError(name, "give a value (or a list of values) to match")
        out[name] = tuple(dict.fromkeys(v for v in wanted if v is not None))
    return out
