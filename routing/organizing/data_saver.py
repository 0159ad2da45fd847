"""Data-saver keywords: LITE turns the supporter's data-saver on, FULL turns it off, on any
channel, matched as the consent keywords are (the whole message, any case, punctuation
ignored; Telegram's "/lite" too). A short confirmation goes back over the same channel.

A data-saver supporter gets SMS first in their channel order, and media and long texts
as a short link to the message's public page (routing/outbound/data_saver.py).
"""

from __future__ import annotations

import logging

from sqlmodel.ext.asyncio.session import AsyncSession

from routing.context import AppContext
from routing.organizing.automation import Arrival, Awaiting, Inbound
from routing.organizing.keywords import keyword_text, keyword_word
from routing.outbound.queue import queue_message

log = logging.getLogger(__name__)

WORDS = {"lite": True, "full": False}
CONFIRM_ON = (
    "Data saver on: we will text you first and send photos and long messages as links. "
    "Reply FULL to turn it off."
)
CONFIRM_OFF = "Data saver off: you will get full messages and media again. Reply LITE to save data."


def data_saver_word(text: str | None) -> bool | None:
    """True for LITE, False for FULL, None for anything else."""
    return WORDS.get(keyword_word(text) or "")


class DataSaverKeywords:
    awaiting: Awaiting | None = None  # the keyword is in the message: nobody is waited on

    def might_react(self, arrival: Arrival) -> bool:
        return data_saver_word(keyword_text(arrival.event)) is not None

    async def react(self, session: AsyncSession, ctx: AppContext, inbound: Inbound) -> bool:
        event, supporter = inbound.event, inbound.supporter
        wanted = data_saver_word(keyword_text(event))
        if wanted is None:
            return False
        if supporter.data_saver != wanted:
            supporter.data_saver = wanted
            supporter.updated_at = ctx.clock()
            session.add(supporter)
            log.info("supporter %s data saver %s", supporter.id, "on" if wanted else "off")
        if supporter.opted_out:
            return True  # no message to someone who opted out
        await queue_message(
            session,
            ctx,
            supporter,
            CONFIRM_ON if wanted else CONFIRM_OFF,
            kind="auto_reply",
            channel=event.channel,
        )
        return True


DATA_SAVER_KEYWORDS = DataSaverKeywords()
