"""/api/v1/fields: the custom fields supporters carry (admins and coordinators define them;
every role reads them)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, HTTPException, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field

from gateway.api.problems import errors
from gateway.api.scope import SessionDep
from gateway.auth import AnyRole, Context, Staff
from routing.people.fields import FieldValueError, all_fields, define_field, delete_field
from storage.models import CustomField

router = APIRouter(prefix="/fields", tags=["custom fields"])


class FieldCreate(BaseModel):
    name: str = Field(min_length=1, max_length=64, description="a slug, e.g. county")
    type: Literal["text", "number", "date", "choice"]
    choices: list[str] | None = Field(None, max_length=200, description="a choice field's")


class FieldPublic(BaseModel):
    name: str
    type: str
    choices: list[str] | None
    created_at: datetime


def field_public(field: CustomField) -> FieldPublic:
    return FieldPublic(
        name=field.name, type=field.type, choices=field.choices, created_at=field.created_at
    )


class FieldList(BaseModel):
    items: list[FieldPublic]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=FieldPublic,
    responses=errors({409: "a field with this name exists"}),
)
async def create_field(
    body: FieldCreate, _: Staff, ctx: Context, session: SessionDep
) -> FieldPublic:
    """Define a custom field: text, number, date (YYYY-MM-DD) or choice (from `choices`)."""
    taken = any(f.name == body.name for f in await all_fields(session))
    if taken:
        raise HTTPException(status.HTTP_409_CONFLICT, f"a field named {body.name} exists")
    try:
        field = await define_field(session, body.name, body.type, body.choices, ctx.clock())
    except FieldValueError as exc:
        where = "choices" if "choice" in exc.message else "name"
        raise RequestValidationError(
            [{"loc": ("body", where), "msg": exc.message, "type": "value_error"}]
        ) from exc
    await session.commit()
    return field_public(field)


@router.get("", response_model=FieldList)
async def list_fields(_: AnyRole, session: SessionDep) -> FieldList:
    return FieldList(items=[field_public(f) for f in await all_fields(session)])


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_field(name: str, _: Staff, session: SessionDep) -> Response:
    """Delete a field and every supporter's value of it."""
    if not await delete_field(session, name):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no field named {name}")
    await session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
