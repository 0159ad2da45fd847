"""Row ids taken from a request path or query: whole numbers in the range a row id can have
(storage.models.MAX_ID), so that anything else is a 422 before it reaches the database."""

from __future__ import annotations

from typing import Annotated

from fastapi import Header, Path, Query

from storage.models import MAX_ID

IdPath = Annotated[int, Path(ge=1, le=MAX_ID, description="a row id")]
IdQuery = Annotated[int | None, Query(ge=1, le=MAX_ID)]
# A create request's retry key: the same key and body answer the original (nothing is
# made or sent twice); another body with it is a 409.
IdempotencyKey = Annotated[
    str | None, Header(alias="Idempotency-Key", min_length=1, max_length=200)
]
