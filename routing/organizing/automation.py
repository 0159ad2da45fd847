"""What an automation is: one object that may react to an inbound message.

An automation (consent keywords, onboarding, poll answers, ...) implements `Reaction`:

- `might_react(arrival)`: a cheap test on the message alone, before it is stored (no I/O).
  A superset is safe: a message it says yes to is stored one by one, with every reaction.
- `awaiting`: the supporters it waits on for a reply whatever they say (onboarding in
  progress, an open poll), as a statement selecting supporter ids; None if it never waits.
  The set-based paths run it for a whole batch (SQLAlchemy on any database, the SQLite lane
  compiled once) and store those supporters' messages one by one too.
- `react(session, ctx, inbound)`: the reaction itself, in the transaction that stores the
  message; True when it consumed the message (later reactions do not run).

`routing/organizing/reactions.py` holds the one ordered list of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from sqlalchemy import Select, bindparam
from sqlmodel.ext.asyncio.session import AsyncSession

from channels.base import InboundMessage
from routing.config import RoutingSettings
from routing.context import AppContext
from storage.models import Message, Supporter, SupporterAddress

# The expanding parameter every `Awaiting` statement filters supporter ids by.
SUPPORTER_IDS = "supporter_ids"


def supporter_ids() -> Any:
    """The bound list of supporter ids for an `Awaiting` statement's IN (...)."""
    return bindparam(SUPPORTER_IDS, expanding=True)


class Arrival(NamedTuple):
    """An inbound message before it is stored, with the settings that name its triggers.
    (A named tuple: one is made per message of every batch, on the hot path.)"""

    event: InboundMessage
    settings: RoutingSettings


@dataclass(frozen=True, slots=True)
class Inbound:
    """An inbound message as stored: the row, its sender and the address it came from."""

    event: InboundMessage
    message: Message
    supporter: Supporter
    address: SupporterAddress


def _no_params(_now: datetime) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class Awaiting:
    """A statement selecting the ids of supporters (among the bound `supporter_ids`) an
    automation waits on, and the other parameters it binds at a given time."""

    statement: Select[Any]
    params: Callable[[datetime], dict[str, Any]] = field(default=_no_params)


class Reaction(Protocol):
    """One automation (see the module docstring)."""

    @property
    def awaiting(self) -> Awaiting | None: ...

    def might_react(self, arrival: Arrival) -> bool: ...

    async def react(self, session: AsyncSession, ctx: AppContext, inbound: Inbound) -> bool: ...
