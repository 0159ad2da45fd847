"""What one inbound mail becomes, whichever way it came in (the SMTP listener or an IMAP
mailbox): parsed (parse.py: reply stripping, bounces, auto-replies) and its sender checked
(sender_auth.py). Both transports call `read_mail`; each maps its exceptions to its own
answer (an SMTP reply code, or leaving the mail in the mailbox)."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.utils import parseaddr

from channels.base import InboundMessage, StatusUpdate
from channels.email.parse import UnusableSender, parse_events
from channels.email.sender_auth import CheckLater, SenderAuth

__all__ = ["CheckLater", "Unreadable", "UnusableSender", "read_mail", "return_path"]


class Unreadable(ValueError):
    """The mail could not be parsed at all."""


async def read_mail(
    raw: bytes, envelope_from: str | None, sender_auth: SenderAuth
) -> list[InboundMessage | StatusUpdate]:
    """The events `raw` carries, each inbound message marked by the sender check; empty
    for an automatic reply or a report that changes nothing.

    Raises UnusableSender (no sender address), Unreadable (not parseable) or CheckLater
    (the sender check may succeed later: try again then)."""
    try:
        events = parse_events(raw, envelope_from=envelope_from)
    except UnusableSender:
        raise
    except Exception as exc:
        raise Unreadable(type(exc).__name__) from exc
    if not events:
        return []
    return await sender_auth.mark(raw, events)


def return_path(raw: bytes) -> str | None:
    """The envelope sender the delivering server wrote in the Return-Path header ("" for
    the null sender of a bounce), or None when there is none (mail in a mailbox has no
    SMTP envelope of its own)."""
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        end = raw.find(b"\n\n")
    headers = message_from_bytes(raw[: end if end >= 0 else len(raw)], policy=policy.compat32)
    value = headers.get("return-path")
    if value is None:
        return None
    text = " ".join(str(value).split())
    if text.strip("<> ") == "":
        return ""
    return parseaddr(text)[1] or None
