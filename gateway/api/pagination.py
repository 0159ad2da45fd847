"""Keyset pagination shared by every list endpoint: `?limit=&cursor=` → `{items, next_cursor}`.

The cursor is opaque to clients (base64 of the last row's sort key), so a page never
repeats or skips a row when rows are inserted between requests, unlike OFFSET.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel

from storage.models import MAX_ID

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 500

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="rows per page (max 500)")]
Cursor = Annotated[
    str | None, Query(description="`next_cursor` from the previous page; omit for the first")
]


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


def encode_cursor(*key: Any) -> str:
    values = [v.isoformat() if isinstance(v, datetime) else v for v in key]
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, kinds: tuple[type, ...]) -> list[Any] | None:
    """The key a cursor carries, checked against the expected types; bad cursor → 422."""
    if cursor is None or cursor == "":
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
        if not isinstance(values, list) or len(values) != len(kinds):
            raise ValueError("wrong shape")
        out: list[Any] = []
        for kind, value in zip(kinds, values, strict=True):
            if kind is datetime:
                when = datetime.fromisoformat(value)
                # Cursors we write are UTC; a naive one would not compare on PostgreSQL.
                out.append(when if when.tzinfo else when.replace(tzinfo=UTC))
            elif (
                kind is int
                and isinstance(value, int)
                and not isinstance(value, bool)
                and -MAX_ID <= value <= MAX_ID
            ):
                out.append(value)
            elif kind is str and isinstance(value, str):
                out.append(value)
            else:
                raise ValueError("wrong type")
        return out
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise RequestValidationError(
            [
                {
                    "loc": ("query", "cursor"),
                    "msg": "invalid cursor; pass next_cursor from the previous page",
                    "type": "value_error",
                }
            ]
        ) from exc


def split_page(rows: list[T], limit: int) -> tuple[list[T], bool]:
    """Rows were fetched with limit + 1: the page, and whether another one follows."""
    return rows[:limit], len(rows) > limit
