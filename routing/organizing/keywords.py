"""Consent and help keywords: STOP, START, HELP and their synonyms, on every channel.

A keyword is the whole message: one word, any case, with surrounding whitespace and
punctuation (any Unicode punctuation) ignored, so "Stop!", " stop. " and "«STOP»" count
and "stop please" does not. Telegram commands count too: "/stop" and "/stop@yourbot".
"""

from __future__ import annotations

import logging
import re
import unicodedata
from functools import lru_cache
from typing import Literal

from sqlmodel.ext.asyncio.session import AsyncSession

from channels.base import InboundMessage
from routing.context import AppContext
from routing.organizing.automation import Arrival, Awaiting, Inbound
from routing.outbound.queue import queue_message
from routing.people.consent import record_consent
from routing.sms_routes import sms_adapter

log = logging.getLogger(__name__)

KeywordKind = Literal["opt_out", "opt_in", "help"]

OPT_OUT_WORDS = frozenset(
    {"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "revoke", "optout"}
)
OPT_IN_WORDS = frozenset({"start", "unstop", "yes"})
HELP_WORDS = frozenset({"help", "info"})

# "/stop" or "/stop@SomeBot": a Telegram bot command, possibly addressed to one bot.
_COMMAND = re.compile(r"^/([a-z]+)(?:@[a-z0-9_]+)?$")
# Characters that can pad a keyword: invisible format marks (zero-width space, BOM).
_PAD_CATEGORIES = ("P", "Z", "Cc", "Cf")


@lru_cache(maxsize=4096)
def _is_padding(char: str) -> bool:
    return char.isspace() or unicodedata.category(char).startswith(_PAD_CATEGORIES)


# Every inbound message is looked at more than once (consent keywords, the join keyword):
# short texts (nearly every reply) are remembered, so the cache stays a few kilobytes.
_REMEMBERED_LENGTH = 256


def keyword_word(text: str | None) -> str | None:
    """The single word a message consists of (case-folded, padding stripped), else None."""
    if not text:
        return None
    if len(text) <= _REMEMBERED_LENGTH:
        return _remembered_word(text)
    return _word(text)


@lru_cache(maxsize=256)
def _remembered_word(text: str) -> str | None:
    return _word(text)


def _word(text: str) -> str | None:
    folded = unicodedata.normalize("NFKC", text).casefold()
    command = _COMMAND.match(folded.strip())
    if command:
        return command.group(1)
    start, end = 0, len(folded)
    while start < end and _is_padding(folded[start]):
        start += 1
    while end > start and _is_padding(folded[end - 1]):
        end -= 1
    word = folded[start:end]
    if not word or any(map(_is_padding, word)):
        return None
    return word


def classify(text: str | None) -> KeywordKind | None:
    """Which consent keyword `text` is, if it is one."""
    word = keyword_word(text)
    if word in OPT_OUT_WORDS:
        return "opt_out"
    if word in OPT_IN_WORDS:
        return "opt_in"
    if word in HELP_WORDS:
        return "help"
    return None


def keyword_text(event: InboundMessage) -> str | None:
    """The text a keyword is looked for in; an email with no body may say it in its subject."""
    if event.channel == "email" and not event.body.strip():
        return event.subject
    return event.body


def provider_replied(ctx: AppContext, channel: str, address: str) -> bool:
    """Whether the provider has already answered the keyword itself.

    Twilio answers STOP, START and HELP on SMS unless its opt-out handling is turned off
    (RALLYPOINT_TWILIO_HANDLES_OPT_OUT=false); a second answer from us would be noise.
    An SMS provider that answers nothing says so (`answers_keywords = False`: Africa's
    Talking), and numbers whose SMS it sends (RALLYPOINT_SMS_ROUTES) get our answer.
    """
    if channel != "sms" or not ctx.settings.twilio_handles_opt_out:
        return False
    adapter = sms_adapter(ctx.registry, ctx.settings.sms_routes, address)
    return adapter is None or bool(getattr(adapter, "answers_keywords", True))


class ConsentKeywords:
    """STOP, START and HELP (and their synonyms) as the whole message."""

    awaiting: Awaiting | None = None  # a keyword is in the message: nobody is waited on

    def might_react(self, arrival: Arrival) -> bool:
        return classify(keyword_text(arrival.event)) is not None

    async def react(self, session: AsyncSession, ctx: AppContext, inbound: Inbound) -> bool:
        """Opt out, opt in or answer HELP; True when the message was a keyword we acted on.

        An opt-in word from someone who is not opted out is left alone ("YES" may answer a
        poll, "/start" begins onboarding on Telegram).
        """
        event, supporter = inbound.event, inbound.supporter
        kind = classify(keyword_text(event))
        if kind is None:
            return False
        if kind == "opt_in" and not supporter.opted_out:
            return False
        now = ctx.clock()
        if kind == "help":
            text = ctx.settings.help_text
        else:
            changed = await record_consent(
                session,
                supporter,
                kind,
                now=now,
                channel=event.channel,
                message_id=inbound.message.id,
            )
            if not changed:
                log.info("consent keyword repeated: supporter=%s; no confirmation", supporter.id)
                return True
            text = ctx.settings.opt_out_text if kind == "opt_out" else ctx.settings.opt_in_text
        if provider_replied(ctx, event.channel, event.address):
            return True
        await queue_message(
            session,
            ctx,
            supporter,
            text,
            kind="consent",
            channel=event.channel,
            allow_opted_out=True,
        )
        return True


KEYWORDS = ConsentKeywords()
