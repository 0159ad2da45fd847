"""Row ids taken from a request path or query: whole numbers in the range a row id can have
(storage.models.MAX_ID), so that anything else is a 422 before it reaches the database."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from storage.models import MAX_ID

IdPath = Annotated[int, Path(ge=1, le=MAX_ID, description="a row id")]
IdQuery = Annotated[int | None, Query(ge=1, le=MAX_ID)]
