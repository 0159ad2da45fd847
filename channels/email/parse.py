"""Inbound mail (RFC 5322 bytes) into an `InboundMessage`.

Pure: no I/O. The body is the plain-text part when there is one, else the HTML part
rendered as text (inscriptis), with quoted replies and signatures stripped. The whole
message is kept, bounded, in `raw` for audit.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
from datetime import UTC, datetime
from email.message import EmailMessage, Message
from email.utils import parseaddr

from inscriptis import get_text

from channels.base import Attachment, InboundMessage, StatusUpdate
from channels.email.bounce import is_delivery_report, parse_bounce
from channels.email.bounce_text import is_null_sender, is_plain_bounce, parse_plain_bounce
from channels.email.read_policy import READ_POLICY
from channels.email.reply import normalise_newlines, strip_reply
from channels.graphemes import truncate

MAX_RAW_CHARS = 256 * 1024
MAX_PROVIDER_ID = 200  # Message.provider_message_id column width
MAX_HEADER_ID = 998  # RFC 5322 line limit; Message.email_message_id column width
UNVERIFIED_PREFIX = "unverified:"  # provider id of mail whose sender was not verified

# RFC 3834 and the de-facto headers autoresponders set. Mail carrying them is dropped so
# that our automatic replies and an out-of-office never answer each other forever.
_AUTO_PRECEDENCE = {"bulk", "junk", "auto_reply", "auto-reply"}
_AUTO_FLAG_HEADERS = ("x-autoreply", "x-autorespond")


class UnusableSender(ValueError):
    """Neither the From header nor the envelope sender is a usable address."""


def is_auto_reply(msg: Message) -> bool:
    """True for autoresponder and machine mail (out-of-office, bounces, bulk)."""
    auto_submitted = str(msg.get("auto-submitted", "")).strip().lower()
    if auto_submitted and not auto_submitted.startswith("no"):
        return True
    if str(msg.get("precedence", "")).strip().lower() in _AUTO_PRECEDENCE:
        return True
    if any(msg.get(name) is not None for name in _AUTO_FLAG_HEADERS):
        return True
    # Delivery status notifications (bounces) are reports, not a supporter writing.
    return msg.get_content_type() == "multipart/report"


def _address(value: str | None) -> tuple[str, str]:
    name, addr = parseaddr(value or "")
    addr = addr.strip().lower()
    if addr.count("@") != 1 or " " in addr or addr.startswith("@") or addr.endswith("@"):
        return name.strip(), ""
    return name.strip(), addr


def _text_of(part: Message) -> str:
    try:
        content = part.get_content()  # type: ignore[attr-defined]
    except (LookupError, UnicodeError, ValueError):
        # An unknown or lying charset: keep what can be read.
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    return content if isinstance(content, str) else ""


def _body(msg: EmailMessage) -> tuple[str, Message | None]:
    part = msg.get_body(("plain", "html"))
    if part is None:
        return "", None
    text = _text_of(part)
    if part.get_content_subtype() == "html":
        # inscriptis indents nested blocks; in a chat-like body that is noise.
        text = "\n".join(line.strip() for line in get_text(text).splitlines())
    return strip_reply(normalise_newlines(text)), part


def _attachments(msg: EmailMessage, body_part: Message | None) -> tuple[Attachment, ...]:
    found: list[Attachment] = []
    for part in msg.walk():
        if part is body_part or part.is_multipart():
            continue
        filename = part.get_filename()
        if filename is None and part.get_content_disposition() != "attachment":
            continue
        payload = part.get_payload(decode=True)
        found.append(
            Attachment(
                content_type=part.get_content_type(),
                filename=filename,
                size=len(payload) if isinstance(payload, bytes) else None,
            )
        )
    return tuple(found)


def _header(msg: Message, name: str, limit: int | None = None) -> str | None:
    value = msg.get(name)
    if value is None:
        return None
    text = " ".join(str(value).split())
    if not text:
        return None
    return text[:limit] if limit else text


def _date(msg: Message) -> datetime | None:
    header = msg.get("date")
    when = getattr(header, "datetime", None)
    if isinstance(when, datetime) and when.tzinfo is not None:
        return when.astimezone(UTC)
    return None


def provider_id(message_id: str | None, raw: bytes, verified: bool | None = None) -> str:
    """The Message-ID, or a digest of the bytes: re-delivering the same mail dedupes.

    `verified` is the sender check's verdict (sender_auth.py; None: not checked). Mail that
    failed it is known by a digest of its bytes under a prefix no other mail's id has: its
    Message-ID is the sender's word, and a forger sending a supporter's next Message-ID
    first would otherwise have the real mail dropped as a retry of the forgery."""
    if verified is False:
        return (UNVERIFIED_PREFIX + hashlib.sha256(raw).hexdigest())[:MAX_PROVIDER_ID]
    # Nor does a verified mail take that form, whatever its Message-ID says.
    claims_prefix = bool(verified) and (message_id or "").startswith(UNVERIFIED_PREFIX)
    if message_id and len(message_id) <= MAX_PROVIDER_ID and not claims_prefix:
        return message_id
    basis = message_id.encode("utf-8", "replace") if message_id else raw
    return "sha256:" + hashlib.sha256(basis).hexdigest()


def parse_events(
    raw: bytes, *, envelope_from: str | None = None
) -> list[InboundMessage | StatusUpdate]:
    """What inbound mail tells us: a supporter's message, the delivery failures a bounce
    reports (see bounce.py), or nothing (other machine mail, a bounce that changes nothing).

    Raises UnusableSender when a message has no usable sender address.
    """
    msg = email.message_from_bytes(raw, policy=READ_POLICY)
    assert isinstance(msg, EmailMessage)
    if is_delivery_report(msg):
        return list(parse_bounce(msg))
    # A plain-text bounce (qmail, Exim...) or anything from the null sender: a report,
    # never a supporter writing, so never a message or a new supporter.
    if is_plain_bounce(msg):
        return list(parse_plain_bounce(msg))
    if is_null_sender(envelope_from):
        if not _address(_header(msg, "from"))[1]:
            raise UnusableSender("no usable sender address")
        return []
    message = _message(msg, raw, envelope_from)
    return [] if message is None else [message]


def parse_email(raw: bytes, *, envelope_from: str | None = None) -> InboundMessage | None:
    """The message `raw` carries, or None for an auto-reply or a bounce (ignored, see
    is_auto_reply).

    Raises UnusableSender when no sender address can be found.
    """
    msg = email.message_from_bytes(raw, policy=READ_POLICY)
    assert isinstance(msg, EmailMessage)
    return _message(msg, raw, envelope_from)


def _message(msg: EmailMessage, raw: bytes, envelope_from: str | None) -> InboundMessage | None:
    if is_auto_reply(msg):
        return None
    name, sender = _address(_header(msg, "from"))
    if not sender:
        name, sender = "", _address(envelope_from)[1]
    if not sender:
        raise UnusableSender("no usable sender address")
    body, body_part = _body(msg)
    message_id = _header(msg, "message-id", MAX_HEADER_ID)
    return InboundMessage(
        channel="email",
        address=sender,
        provider_message_id=provider_id(message_id, raw),
        body=body,
        received_at=_date(msg),
        attachments=_attachments(msg, body_part),
        profile_name=name or None,
        raw=truncate(normalise_newlines(raw.decode("utf-8", "replace")), MAX_RAW_CHARS),
        subject=_header(msg, "subject", MAX_HEADER_ID),
        email_message_id=message_id,
        in_reply_to=_header(msg, "in-reply-to", MAX_HEADER_ID),
        references=_header(msg, "references"),
    )
