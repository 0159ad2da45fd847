"""What an inbound message sets off, in the transaction that stores it.

Each reaction gets the stored message and may change the supporter or queue replies;
the first that returns True consumes the message (later ones do not run).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlmodel.ext.asyncio.session import AsyncSession

from channels.base import InboundMessage
from routing.context import AppContext
from routing.organizing.keywords import react_to_keywords
from routing.organizing.onboarding import react_to_onboarding
from routing.organizing.polls import react_to_poll_answer
from storage.models import Message, Supporter, SupporterAddress

Reaction = Callable[
    [AsyncSession, AppContext, Supporter, SupporterAddress, Message, InboundMessage],
    Awaitable[bool],
]

# Filled in order of precedence: consent keywords first, then onboarding, then polls.
REACTIONS: list[Reaction] = [react_to_keywords, react_to_onboarding, react_to_poll_answer]


async def react_to_inbound(
    session: AsyncSession,
    ctx: AppContext,
    supporter: Supporter,
    address: SupporterAddress,
    message: Message,
    event: InboundMessage,
) -> None:
    for reaction in REACTIONS:
        if await reaction(session, ctx, supporter, address, message, event):
            return
