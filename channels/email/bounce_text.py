"""Bounces that are not RFC 3464 reports: mail with an empty envelope sender, and the
plain-text notices qmail, Exim and Postfix (and their kin) send.

Pure: no I/O. Such mail is never a supporter writing: `is_plain_bounce` says so, and
`parse_plain_bounce` turns what it can into the same `StatusUpdate` an RFC 3464 report
gives (bounce.py): the failed recipients it lists, and the Message-ID of our mail from the
copy it returns. A notice without both, or one that says the failure is temporary, changes
nothing.
"""

from __future__ import annotations

import logging
import re
from email.message import Message
from email.utils import parseaddr

from channels.base import InvalidRecipient, SendError, StatusUpdate
from channels.email.bounce import MAX_DIAGNOSTIC, MAX_PROVIDER_ID

log = logging.getLogger(__name__)

_DAEMONS = frozenset({"mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon"})
_SUBJECTS = re.compile(
    r"^\s*(failure notice|undeliver(ed|able)\b|mail delivery failed|returned mail\b|"
    r"delivery status notification \(failure\)|mail system error|"
    r"delivery failure|message not delivered|non remis|unzustellbar|no entregado)",
    re.I,
)
# What only an MTA writes (qmail, Exim, Postfix), and what a person might too.
_MTA_MARKERS = re.compile(
    r"^(hi\. this is the qmail-send program|"
    r"this message was created automatically by mail delivery software|"
    r"this is the mail system at host)",
    re.I | re.M,
)
_BODY_MARKERS = re.compile(
    r"(could not be delivered to one or more (of its )?recipients|"
    r"delivery to the following recipients? failed|"
    r"following address(\(es\))? failed)",
    re.I,
)
_TEMPORARY = re.compile(
    r"(this is a temporary error|delivery is delayed|will (keep|continue) trying|"
    r"has not yet been delivered|delay(ed)? notification|warning: message .* delayed)",
    re.I,
)
# Where the returned copy of our mail starts (qmail, Exim, Postfix, Sendmail...).
_COPY = re.compile(
    r"^(-{2,}.*(below this line is a copy|copy of the message|original message|"
    r"undelivered message|returned message|message headers follow).*|"
    r"-{3,} ?below this line.*)$",
    re.I | re.M,
)
_MESSAGE_ID = re.compile(r"^message-id:\s*(<[^<>\s]+>)", re.I | re.M)
# qmail and Postfix: "<dana@example.net>:" at the start of a line, the reason after it.
_ANGLE_RECIPIENT = re.compile(r"^<([^<>\s@]+@[^<>\s@]+)>:\s*(.*)$", re.M)
# Exim: the address indented on its own line after "The following address(es) failed:".
_EXIM_HEADING = re.compile(r"following address(?:\(es\))? failed:\s*$", re.I)
_BARE_ADDRESS = re.compile(r"^\s+<?([^<>\s@:]+@[^<>\s@:]+?)>?\s*(?::.*)?$")
_STATUS = re.compile(r"(?<![\d.])([45]\.\d{1,3}\.\d{1,3})(?![\d.])")


def is_null_sender(envelope_from: str | None) -> bool:
    """MAIL FROM:<>, which RFC 5321 keeps for bounces and other notifications."""
    return envelope_from is not None and envelope_from.strip() in ("", "<>")


def is_plain_bounce(msg: Message) -> bool:
    """Whether `msg` reads as a delivery failure notice: from a mailer daemon, or with the
    words only an MTA writes (mail from the null sender is never a message either way:
    see parse.parse_events)."""
    local = parseaddr(str(msg.get("from", "")))[1].partition("@")[0].lower()
    if local in _DAEMONS:
        return True
    text = _text(msg)[:4000]
    if _MTA_MARKERS.search(text):
        return True
    return bool(_SUBJECTS.match(str(msg.get("subject", ""))) and _BODY_MARKERS.search(text))


def _text(msg: Message) -> str:
    """The notice's text parts, and the headers of any message it returns as an attachment."""
    chunks: list[str] = []
    for part in msg.walk():
        kind = part.get_content_type()
        if kind in ("text/plain", "text/rfc822-headers"):
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                charset = part.get_content_charset() or "utf-8"
                try:
                    chunks.append(payload.decode(charset, "replace"))
                except LookupError:
                    chunks.append(payload.decode("utf-8", "replace"))
        elif kind == "message/rfc822" and isinstance(part.get_payload(), list):
            returned = part.get_payload(0)
            if isinstance(returned, Message):
                chunks.append("".join(f"{k}: {v}\n" for k, v in returned.items()))
    return "\n".join(chunks).replace("\r\n", "\n")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _recipients(notice: str) -> list[tuple[str, str]]:
    """(address, reason) for each failed recipient the notice lists: qmail and Postfix
    write "<address>:" and the reason after it and on the lines below, up to a blank line;
    Exim the address indented under "The following address(es) failed:" and the reason
    indented deeper below it."""
    lines = notice.split("\n")
    found: dict[str, str] = {}
    in_exim = False
    for i, line in enumerate(lines):
        angle = _ANGLE_RECIPIENT.match(line)
        if angle:
            reason = [angle.group(2)]
            for following in lines[i + 1 :]:
                if not following.strip():
                    break
                reason.append(following)
            found.setdefault(angle.group(1).lower(), " ".join(" ".join(reason).split()))
            continue
        if _EXIM_HEADING.search(line):
            in_exim = True
            continue
        bare = _BARE_ADDRESS.match(line) if in_exim else None
        if bare:
            reason = []
            for following in lines[i + 1 :]:
                if not following.strip() or _indent(following) <= _indent(line):
                    break
                reason.append(following)
            found.setdefault(bare.group(1).lower(), " ".join(" ".join(reason).split()))
        elif in_exim and line.strip() and not line[:1].isspace():
            in_exim = False
    return list(found.items())


def parse_plain_bounce(msg: Message) -> list[StatusUpdate]:
    """The final failures a plain-text notice tells of; [] when it names no recipient,
    returns no Message-ID of ours, or says it is only a delay."""
    text = _text(msg)
    copy = _COPY.search(text)
    notice, returned = (text[: copy.start()], text[copy.start() :]) if copy else (text, text)
    if _TEMPORARY.search(notice):
        log.info("email notice of a delay ignored")
        return []
    found_id = _MESSAGE_ID.search(returned)
    message_id = found_id.group(1) if found_id else None
    if message_id is None or len(message_id) > MAX_PROVIDER_ID:
        log.info("plain-text email bounce without the original Message-ID ignored")
        return []
    updates = []
    for address, reason in _recipients(notice):
        status_found = _STATUS.search(reason)
        status = status_found.group(1) if status_found else "5.0.0"
        if status.startswith("4."):
            status = "5.0.0"  # a notice (not a delay notice) is sent once delivery is given up
        reason = " ".join(reason.split())
        if len(reason) > MAX_DIAGNOSTIC:
            reason = reason[: MAX_DIAGNOSTIC - 1].rstrip() + "…"
        error = f"bounced: {status} {reason}".strip()
        failure = (
            InvalidRecipient(error, code=status)
            if status.startswith("5.1.")
            else SendError(error, code=status)
        )
        updates.append(
            StatusUpdate(
                channel="email",
                provider_message_id=message_id,
                status="undelivered",
                error_code=status,
                error_message=error,
                failure=failure,
                recipients=(address,),
            )
        )
    return updates
