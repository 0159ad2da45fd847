"""The automations an inbound message may set off, in order of precedence.

Each is a `Reaction` (routing/organizing/automation.py). `store_inbound` runs them in the
transaction that stores the message; the first that returns True consumes it (later ones
do not run). The set-based paths (routing/inbound/bulk.py, the SQLite lane) ask this list,
through `might_react` and `AWAITING`, which messages must be stored one by one so that
every reaction runs. A new automation is one module and one line in `REACTIONS`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CompoundSelect, Select, union
from sqlmodel.ext.asyncio.session import AsyncSession

from routing.context import AppContext
from routing.organizing.automation import SUPPORTER_IDS, Arrival, Inbound, Reaction
from routing.organizing.data_saver import DATA_SAVER_KEYWORDS
from routing.organizing.keywords import KEYWORDS
from routing.organizing.onboarding import ONBOARDING
from routing.organizing.questions import QUESTION_ANSWERS

# Consent keywords first, then data-saver keywords, onboarding, then answers to polls and
# invitations.
REACTIONS: list[Reaction] = [KEYWORDS, DATA_SAVER_KEYWORDS, ONBOARDING, QUESTION_ANSWERS]


def might_react(arrival: Arrival) -> bool:
    """Whether the message alone could set off any automation (no I/O)."""
    for reaction in REACTIONS:
        if reaction.might_react(arrival):
            return True
    return False


def _awaiting_statement(reactions: list[Reaction]) -> Select[Any] | CompoundSelect[Any] | None:
    parts = [r.awaiting.statement for r in reactions if r.awaiting is not None]
    if not parts:
        return None
    # One statement for all: a round trip costs more than any one lookup.
    return parts[0] if len(parts) == 1 else union(*parts)


# Supporter ids (among the bound `supporter_ids`) some automation waits on; None if none do.
AWAITING = _awaiting_statement(REACTIONS)


def awaiting_params(supporter_ids: list[int], now: datetime) -> dict[str, Any]:
    """The parameters `AWAITING` binds for `supporter_ids` at `now`."""
    params: dict[str, Any] = {SUPPORTER_IDS: supporter_ids}
    for reaction in REACTIONS:
        if reaction.awaiting is not None:
            params.update(reaction.awaiting.params(now))
    return params


async def react_to_inbound(session: AsyncSession, ctx: AppContext, inbound: Inbound) -> None:
    """Run the reactions in order until one consumes the message."""
    for reaction in REACTIONS:
        if await reaction.react(session, ctx, inbound):
            return
