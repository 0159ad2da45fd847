"""python-telegram-bot's exceptions mapped to our SendError family, in one place."""

from __future__ import annotations

import logging
import warnings
from datetime import timedelta

from telegram import error as tg

from channels.base import (
    ChannelMisconfigured,
    InvalidRecipient,
    MediaError,
    MediaGone,
    MediaTooLarge,
    MediaUnavailable,
    ProviderUnavailable,
    RecipientOptedOut,
    SendError,
    Throttled,
)

log = logging.getLogger(__name__)

# Forbidden (403) descriptions that mean the person left us, rather than that we may
# never write to them (e.g. "bot can't initiate conversation with a user").
_LEFT_US = ("bot was blocked by the user", "bot was kicked", "bot is not a member")
# BadRequest (400) descriptions that mean the chat id is no good.
_BAD_CHAT = ("chat not found", "user not found", "peer_id_invalid", "chat_id is empty")


def _retry_after_seconds(exc: tg.RetryAfter) -> float:
    # PTB 22 returns int seconds with a deprecation warning, or a timedelta when
    # PTB_TIMEDELTA is set; accept both.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value: int | float | timedelta = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def map_telegram_error(exc: tg.TelegramError) -> SendError:
    """The SendError for `exc`. Unknown errors are permanent (SendError) and logged."""
    text = exc.message
    lowered = text.lower()
    if isinstance(exc, tg.RetryAfter):
        return Throttled(text, retry_after=_retry_after_seconds(exc), code="429")
    if isinstance(exc, tg.ChatMigrated):
        # A group became a supergroup: the stored chat id is dead; the new one is in the text.
        return InvalidRecipient(f"chat migrated to {exc.new_chat_id}", code="400")
    if isinstance(exc, tg.InvalidToken | tg.EndPointNotFound):
        return ChannelMisconfigured(f"Telegram refused the bot token: {text}", code="401")
    if isinstance(exc, tg.Forbidden):
        if any(marker in lowered for marker in _LEFT_US):
            return RecipientOptedOut(text, code="403")
        return InvalidRecipient(text, code="403")
    if isinstance(exc, tg.BadRequest):  # a NetworkError subclass: test it first
        if any(marker in lowered for marker in _BAD_CHAT):
            return InvalidRecipient(text, code="400")
        return SendError(text, code="400")
    if isinstance(exc, tg.NetworkError) and lowered.startswith("too many requests"):
        # A 429 without its retry_after parameter: PTB raises RetryAfter only with one,
        # and a NetworkError (its text Telegram's description) otherwise.
        return Throttled(text, retry_after=None, code="429")
    if isinstance(exc, tg.TimedOut):
        return ProviderUnavailable(f"Telegram timed out: {text}", code="timeout")
    if isinstance(exc, tg.NetworkError):
        return ProviderUnavailable(f"Telegram unreachable: {text}", code="network")
    log.warning("unmapped Telegram error %s: %s", type(exc).__name__, text)
    return SendError(text, code=type(exc).__name__[:32])


def map_media_error(exc: tg.TelegramError) -> MediaError:
    """The MediaError for a failed getFile. Its text is Telegram's description (no token)."""
    text = exc.message
    if isinstance(exc, tg.InvalidToken | tg.EndPointNotFound | tg.Forbidden):
        return MediaUnavailable(f"Telegram refused the bot token: {text}")
    if isinstance(exc, tg.BadRequest):  # a NetworkError subclass: test it first
        if "too big" in text.lower():  # bots may download files up to 20 MB
            return MediaTooLarge(f"Telegram will not serve this file to bots: {text}")
        return MediaGone(f"Telegram no longer has this file: {text}")  # "invalid file_id"
    return MediaUnavailable(f"Telegram getFile failed: {type(exc).__name__}")
