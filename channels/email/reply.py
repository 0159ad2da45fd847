"""Quoted-reply and signature stripping for inbound mail bodies.

email-reply-parser (GitHub's rules) does the main work: `>` quoted lines, "On … wrote:"
headers and `--` signatures. It misses a few shapes common among supporters' mail
clients, so those are cut first: Outlook's "-----Original Message-----" and
"From: … Sent: …" header blocks, Gmail's "On … wrote:" wrapped over two lines, and
"Sent from my …" / "Get Outlook for …" footers.
"""

from __future__ import annotations

import re

from email_reply_parser import EmailReplyParser

_ORIGINAL_MESSAGE = re.compile(r"^\s*-{2,}\s*(Original|Forwarded) Message\s*-{2,}\s*$", re.I)
_UNDERSCORE_RULE = re.compile(r"^\s*_{10,}\s*$")
_ON_WROTE = re.compile(r"^\s*On\b.*\bwrote:\s*$", re.I)
_ON_START = re.compile(r"^\s*On\s.*\d", re.I)
_WROTE_END = re.compile(r"^.*\bwrote:\s*$", re.I)
_MOBILE_FOOTER = re.compile(r"^\s*(Sent from my\b|Get Outlook for\b|Sent from Mail for\b)", re.I)
_SIGNATURE_RULE = re.compile(r"^--\s*$")
# Outlook's quoted header block; Gmail shows it with bold asterisks ("*From:* …").
_HEADER_FROM = re.compile(r"^\s*\*?From:\*?\s+\S", re.I)
_HEADER_NEXT = re.compile(r"^\s*\*?(Sent|Date|To|Subject|Cc):\*?\s", re.I)

MAX_LINES = 20_000


def normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _is_outlook_header(lines: list[str], index: int) -> bool:
    """A "From:" line followed by at least two more header lines (Sent/To/Subject)."""
    if not _HEADER_FROM.match(lines[index]):
        return False
    following = [line for line in lines[index + 1 : index + 6] if line.strip()]
    return sum(1 for line in following[:4] if _HEADER_NEXT.match(line)) >= 2


def _cut_index(lines: list[str]) -> int | None:
    """The index of the first line where quoted material or a footer begins."""
    for i, line in enumerate(lines):
        if (
            _ORIGINAL_MESSAGE.match(line)
            or _ON_WROTE.match(line)
            or _MOBILE_FOOTER.match(line)
            or _SIGNATURE_RULE.match(line)
            or _is_outlook_header(lines, i)
        ):
            return i
        # Gmail wraps a long "On <date> <name> <address>" line before "wrote:".
        if _ON_START.match(line) and i + 1 < len(lines) and _WROTE_END.match(lines[i + 1]):
            return i
        if _UNDERSCORE_RULE.match(line) and i + 1 < len(lines) and _is_outlook_header(lines, i + 1):
            return i
    return None


def _tidy(text: str) -> str:
    lines = [line.rstrip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def strip_reply(text: str) -> str:
    """The new part of a reply: quoted text, quote headers and signatures removed.

    Falls back to the whole text when nothing would remain (e.g. a bare forward), so a
    message is never stored empty because of stripping.
    """
    full = _tidy(normalise_newlines(text))
    lines = full.split("\n")[:MAX_LINES]
    cut = _cut_index(lines)
    kept = "\n".join(lines if cut is None else lines[:cut])
    reply = _tidy(EmailReplyParser.parse_reply(kept)) if kept.strip() else ""
    return reply or full
