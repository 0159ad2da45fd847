"""Telegram Updates (as parsed by python-telegram-bot) turned into our neutral events.

Handled: `message` in any chat (text, captions, media, location, contact, commands)
and `my_chat_member` (the user blocked or unblocked the bot). Everything else,
`edited_message` included, is acknowledged and dropped: an edit would otherwise
store a second copy of a message the organizer has already seen.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from telegram import ChatMemberUpdated, Message, Update

from channels.base import Attachment, ChannelOptOut, InboundMessage, MalformedPayload, WebhookEvent

log = logging.getLogger(__name__)

LEFT_STATUSES = frozenset({"kicked", "left"})
PRESENT_STATUSES = frozenset({"member", "administrator", "creator", "restricted"})


def load_update(body: bytes) -> Update:
    """The Update in `body`, or MalformedPayload for anything Telegram would not send."""
    try:
        data: Any = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedPayload("body is not JSON") from exc
    except RecursionError as exc:
        raise MalformedPayload("body is JSON nested too deeply") from exc
    if not isinstance(data, dict):
        raise MalformedPayload("body is not a JSON object")
    update_id = data.get("update_id")
    if not isinstance(update_id, int) or isinstance(update_id, bool):
        raise MalformedPayload("not a Telegram Update (no integer update_id)")
    try:
        update = Update.de_json(data, None)
    except (TypeError, KeyError, ValueError, AttributeError, OverflowError, OSError) as exc:
        # OverflowError/OSError: a `date` no clock can hold (1e20).
        # e.g. the sample in Telegram's webhook guide, which lacks from.is_bot and chat.type
        raise MalformedPayload(f"Update does not parse: {exc}") from exc
    return update


def events_from_update(update: Update, raw: str) -> list[WebhookEvent]:
    if update.message is not None:
        message = inbound_message(update.update_id, update.message, raw)
        if message.body or message.attachments:
            return [message]
        # Service messages (someone joined a group, a pinned message...): nothing to read.
        log.debug("telegram update %s: message without content ignored", update.update_id)
        return []
    if update.my_chat_member is not None:
        opt_out = membership_change(update.update_id, update.my_chat_member)
        return [opt_out] if opt_out is not None else []
    kinds = [key for key in update.to_dict() if key != "update_id"]
    log.debug("telegram update %s ignored (%s)", update.update_id, ",".join(kinds))
    return []


def _command(text: str) -> tuple[str, str] | None:
    """("/start", "payload") for "/start@MyBot payload"; None when `text` is no command."""
    if not text.startswith("/"):
        return None
    head, _, rest = text.partition(" ")
    return head.split("@", 1)[0].lower(), rest.strip()


def _sender_name(message: Message) -> str | None:
    if message.chat.type != "private" and message.chat.title:
        return message.chat.title  # a group is one conversation, named after the group
    user = message.from_user
    if user is None:
        return message.chat.title or message.chat.full_name
    return user.full_name or user.username


def _attachments(message: Message) -> tuple[Attachment, ...]:
    found: list[Attachment] = []
    if message.photo:
        largest = message.photo[-1]  # Telegram lists sizes smallest first
        found.append(Attachment("image/jpeg", media_id=largest.file_id, size=largest.file_size))
    for media, default_type in (
        (message.document, "application/octet-stream"),
        (message.video, "video/mp4"),
        (message.audio, "audio/mpeg"),
        (message.voice, "audio/ogg"),
        (message.animation, "video/mp4"),
    ):
        if media is not None:
            found.append(
                Attachment(
                    getattr(media, "mime_type", None) or default_type,
                    media_id=media.file_id,
                    filename=getattr(media, "file_name", None),
                    size=media.file_size,
                )
            )
    if message.video_note is not None:
        note = message.video_note
        found.append(Attachment("video/mp4", media_id=note.file_id, size=note.file_size))
    if message.sticker is not None:
        sticker = message.sticker
        found.append(Attachment("image/webp", media_id=sticker.file_id, size=sticker.file_size))
    return tuple(found)


def _body(message: Message) -> str:
    if message.text is not None:
        return message.text
    if message.caption is not None:
        return message.caption
    if message.location is not None:
        return f"location: {message.location.latitude},{message.location.longitude}"
    if message.contact is not None:
        contact = message.contact
        name = " ".join(p for p in (contact.first_name, contact.last_name) if p)
        return f"contact: {name} {contact.phone_number}".strip()
    if message.sticker is not None and message.sticker.emoji:
        return message.sticker.emoji
    return ""


def inbound_message(update_id: int, message: Message, raw: str) -> InboundMessage:
    body = _body(message)
    start_payload: str | None = None
    command = _command(body) if message.text is not None else None
    if command is not None:
        name, argument = command
        if name == "/start":
            body, start_payload = "/start", argument or None
        elif not argument:
            body = name  # "/stop@MyBot" is "/stop", which routing treats as STOP
    return InboundMessage(
        channel="telegram",
        address=str(message.chat.id),
        # update_id is what Telegram repeats when it retries a delivery.
        provider_message_id=str(update_id),
        body=body,
        received_at=message.date,
        attachments=_attachments(message),
        profile_name=_sender_name(message),
        raw=raw,
        start_payload=start_payload,
    )


def membership_change(update_id: int, change: ChatMemberUpdated) -> ChannelOptOut | None:
    """Blocking the bot (kicked) opts the chat out; unblocking (member again) opts it in."""
    old, new = change.old_chat_member.status, change.new_chat_member.status
    private = change.chat.type == "private"
    if new in LEFT_STATUSES:
        reason = "blocked the bot" if private else "removed the bot from the chat"
        opted_out = True
    elif new in PRESENT_STATUSES and old in LEFT_STATUSES:
        reason = "unblocked the bot" if private else "added the bot back to the chat"
        opted_out = False
    else:
        return None
    return ChannelOptOut(
        channel="telegram",
        address=str(change.chat.id),
        reason=reason,
        provider_event_id=str(update_id),
        opted_out=opted_out,
    )
