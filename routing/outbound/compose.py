"""A stored outbound Message becomes the provider-neutral OutboundMessage an adapter sends."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlsplit

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from channels.base import Channel, FileAttachment, OutboundMessage, Template
from routing.config import RoutingSettings
from storage.models import Message


def template_from(data: dict[str, Any] | None) -> Template | None:
    """The message's stored template dict ({name, language, variables, content_sid})."""
    if not data or not data.get("name") and not data.get("content_sid"):
        return None
    variables = data.get("variables") or {}
    return Template(
        name=str(data.get("name") or ""),
        language=str(data.get("language") or "en"),
        variables={str(k): str(v) for k, v in dict(variables).items()},
        content_sid=data.get("content_sid"),
    )


def email_domain(settings: RoutingSettings) -> str:
    if settings.smtp_from and "@" in settings.smtp_from:
        return settings.smtp_from.rsplit("@", 1)[1].strip(" >").lower()
    return urlsplit(settings.public_url).hostname or "rallypoint.invalid"


def new_email_message_id(message_id: int, settings: RoutingSettings) -> str:
    return f"<rp.{message_id}.{secrets.token_hex(6)}@{email_domain(settings)}>"


async def last_inbound_email(session: AsyncSession, supporter_id: int) -> Message | None:
    return (
        await session.exec(
            select(Message)
            .where(
                Message.supporter_id == supporter_id,
                Message.direction == "inbound",
                Message.channel == "email",
                col(Message.email_message_id).is_not(None),
                # Not under a Message-ID and subject a forger chose (sender not verified).
                col(Message.sender_verified).is_not(False),
            )
            .order_by(col(Message.id).desc())
            .limit(1)
        )
    ).first()


async def prepare_email_threading(
    session: AsyncSession, message: Message, settings: RoutingSettings
) -> None:
    """Give the mail its Message-ID (kept across retries) and thread it under the
    supporter's last mail to us. Changes `message`; the caller commits."""
    assert message.id is not None
    if not message.email_message_id:
        message.email_message_id = new_email_message_id(message.id, settings)
    if message.in_reply_to is None:
        parent = await last_inbound_email(session, message.supporter_id)
        if parent is not None and parent.email_message_id:
            message.in_reply_to = parent.email_message_id
            message.references = " ".join(
                part for part in (parent.references, parent.email_message_id) if part
            )
            if not message.subject and parent.subject:
                subject = parent.subject
                message.subject = subject if subject.lower().startswith("re:") else f"Re: {subject}"
    session.add(message)


def compose(message: Message, *, use_template: bool) -> OutboundMessage:
    """The value handed to `adapter.send`. `use_template`: WhatsApp outside the window.

    `message` may also be a row of the messages table's columns (the dispatcher loads
    plain rows)."""
    assert message.id is not None and message.channel and message.address
    channel: Channel = message.channel  # type: ignore[assignment]
    media = tuple(a["url"] for a in (message.attachments or []) if a.get("url"))
    # Files carried inline (an event's calendar file): only email sends them.
    files = tuple(
        FileAttachment(
            filename=str(a.get("filename") or "attachment"),
            content_type=str(a.get("content_type") or "application/octet-stream"),
            data=str(a["text"]).encode(),
        )
        for a in (message.attachments or [])
        if channel == "email" and a.get("text") is not None
    )
    return OutboundMessage(
        message_id=message.id,
        channel=channel,
        to=message.address,
        body=message.body,
        subject=message.subject,
        template=template_from(message.template) if use_template else None,
        media_urls=media,
        email_message_id=message.email_message_id if channel == "email" else None,
        in_reply_to=message.in_reply_to if channel == "email" else None,
        references=message.references if channel == "email" else None,
        files=files,
    )
