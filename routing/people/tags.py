"""Tagging supporters in bulk: one tag added to (or removed from) many supporters in the
caller's transaction, so either all of them change or none do."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from routing.people.supporters import FieldError, clean_tags
from storage.models import Supporter, SupporterTag


def one_tag(value: str) -> str:
    """The tag, trimmed; FieldError when empty or too long (the same rule as a supporter's
    own tag list)."""
    tags = clean_tags([value])
    if not tags:
        raise FieldError(("tag",), "a tag is required")
    return tags[0]


async def change_tag(
    session: AsyncSession,
    supporter_ids: Sequence[int],
    tag: str,
    *,
    add: bool,
    now: datetime,
) -> int:
    """Add `tag` to (add=True) or remove it from each supporter (no commit); returns how
    many supporters changed. The caller checks that every id may be touched."""
    tag = one_tag(tag)
    ids = sorted(set(supporter_ids))
    if not ids:
        return 0
    have = set(
        (
            await session.exec(
                select(SupporterTag.supporter_id).where(
                    col(SupporterTag.supporter_id).in_(ids), SupporterTag.tag == tag
                )
            )
        ).all()
    )
    if add:
        changed = [i for i in ids if i not in have]
        session.add_all(SupporterTag(supporter_id=i, tag=tag) for i in changed)
    else:
        changed = [i for i in ids if i in have]
        if changed:
            await session.execute(
                delete(SupporterTag).where(
                    col(SupporterTag.supporter_id).in_(changed), col(SupporterTag.tag) == tag
                )
            )
    if changed:
        await session.execute(
            update(Supporter).where(col(Supporter.id).in_(changed)).values(updated_at=now)
        )
    await session.flush()
    return len(changed)
