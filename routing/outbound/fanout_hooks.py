"""What a kind of announcement adds to each fan-out batch, beside the shared message.

Event invitations (routing/organizing/event_invites.py) word each message in the
supporter's own timezone, attach the calendar file, and write an RSVP row per invitee, in
the batch's own transaction. A kind registers its hook here once, when its module is
imported; a kind without one fans out the plain announcement.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from sqlmodel.ext.asyncio.session import AsyncSession

from routing.context import AppContext
from routing.outbound.fanout_rows import FanoutPlan
from storage.bulk_insert import BulkWriter


class FanoutHook(Protocol):
    async def rows(
        self,
        ctx: AppContext,
        session: AsyncSession,
        writer: BulkWriter,
        plan: FanoutPlan,
        rows: list[tuple[Any, ...]],
        now: datetime,
    ) -> list[tuple[Any, ...]]:
        """The batch's message rows (MESSAGE_COLUMNS order), changed as the kind needs."""
        ...

    async def after_batch(
        self, session: AsyncSession, plan: FanoutPlan, after: int, last: int, now: datetime
    ) -> None:
        """Runs once the batch's messages and outbox rows are written (same transaction)."""
        ...


FANOUT_HOOKS: dict[str, FanoutHook] = {}


def register_fanout_hook(kind: str, hook: FanoutHook) -> None:
    FANOUT_HOOKS[kind] = hook
