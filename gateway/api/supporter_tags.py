"""POST /api/v1/supporters/tags: add a tag to, or remove it from, many supporters at once
(the console's "tag in bulk" runs the same function)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from gateway.api.problems import errors
from gateway.api.scope import SessionDep, supporter_scope
from gateway.auth import AnyRole, Context, Principal
from routing.people.supporters import FieldError
from routing.people.tags import change_tag
from storage.models import MAX_ID, Supporter

router = APIRouter(prefix="/supporters", tags=["supporters"])
MAX_BULK = 1000
SupporterId = Annotated[int, Field(ge=1, le=MAX_ID)]


class BulkTag(BaseModel):
    supporter_ids: list[SupporterId] = Field(min_length=1, max_length=MAX_BULK)
    tag: str = Field(min_length=1, max_length=100)
    action: Literal["add", "remove"] = "add"


class BulkTagResult(BaseModel):
    changed: int = Field(description="supporters that gained (or lost) the tag")


async def tag_supporters(
    session: AsyncSession,
    principal: Principal,
    supporter_ids: Sequence[int],
    tag: str,
    *,
    add: bool,
    now: datetime,
) -> int:
    """Check that `principal` may see every supporter (else 404, nothing changes), then
    change the tag for all of them and commit, in one transaction."""
    ids = sorted(set(supporter_ids))
    stmt = select(Supporter.id).where(col(Supporter.id).in_(ids))
    scope = supporter_scope(principal)
    if scope is not None:
        stmt = stmt.where(scope)
    found = set((await session.exec(stmt)).all())
    missing = [i for i in ids if i not in found]
    if missing:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"no such supporter: {', '.join(map(str, missing[:10]))}"
        )
    changed = await change_tag(session, ids, tag, add=add, now=now)
    await session.commit()
    return changed


@router.post(
    "/tags",
    response_model=BulkTagResult,
    responses=errors({404: "a supporter is unknown, or outside a team lead's team"}),
)
async def bulk_tag(
    body: BulkTag, principal: AnyRole, ctx: Context, session: SessionDep
) -> BulkTagResult:
    """Add (`action: add`) or remove one tag for up to 1000 supporters; all or nothing.
    A supporter the caller may not see (a team lead: outside their team) → 404."""
    try:
        changed = await tag_supporters(
            session,
            principal,
            body.supporter_ids,
            body.tag,
            add=body.action == "add",
            now=ctx.clock(),
        )
    except FieldError as exc:
        raise RequestValidationError(
            [{"loc": ("body", *exc.loc), "msg": exc.message, "type": "value_error"}]
        ) from exc
    return BulkTagResult(changed=changed)
