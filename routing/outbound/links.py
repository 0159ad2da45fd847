"""Public pages of outbound messages, and sending a link where the full thing does not fit.

A message that carries media, or is long and goes to a data-saver supporter, gets an
unguessable token (`messages.public_token`, 192 random bits): its page
`RALLYPOINT_PUBLIC_URL/m/{token}` shows the full text and the media with no login, and
`/m/{token}/media/{n}` serves (or forwards to) its n-th file, which is also the URL
providers fetch an uploaded file from. The page lives as long as the message's body
(RALLYPOINT_RETENTION_DAYS).

`lighten` turns the composed OutboundMessage into what the supporter gets:
- media go as files where the channel takes them, else (or for a data-saver supporter)
  as the page's link after the text;
- for a data-saver supporter, a long text (over one SMS segment on SMS, over
  `LONG_TEXT` characters elsewhere) becomes its beginning and the link to the rest.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from channels.base import OutboundMedia, OutboundMessage
from channels.graphemes import truncate
from channels.sms_segments import sms_segments

LONG_TEXT = 320
ELLIPSIS = "..."  # GSM-7: "…" would make the SMS UCS-2 and cost characters


def new_public_token() -> str:
    return secrets.token_urlsafe(24)


def page_url(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/m/{token}"


def is_long(body: str, channel: str) -> bool:
    if channel == "sms":
        return sms_segments(body) > 1
    return len(body) > LONG_TEXT


def is_media(attachment: Mapping[str, Any]) -> bool:
    """A file sent by URL or from its page; not one carried inline with the message (an
    event's calendar file, which only email sends, routing/outbound/compose.py)."""
    return attachment.get("text") is None


def needs_page(
    attachments: Sequence[Mapping[str, Any]], body: str, channel: str, saver: bool
) -> bool:
    """Whether a message needs its public page (so a token) to be sent over `channel`."""
    return any(is_media(a) for a in attachments) or (saver and is_long(body, channel))


@dataclass(frozen=True)
class Lighten:
    """How to send one message: its page's link, whether the supporter saves data, and
    whether the channel takes files."""

    link: str
    data_saver: bool
    media_ok: bool


def media_of(attachments: Sequence[Mapping[str, Any]], link: str) -> list[OutboundMedia]:
    """The message's files: a given URL as it is, an upload by its public page."""
    return [
        OutboundMedia(
            url=str(a.get("url") or f"{link}/media/{index}"),
            content_type=a.get("content_type"),
            filename=a.get("filename"),
        )
        for index, a in enumerate(attachments)
        if is_media(a)
    ]


def shorten(body: str, link: str, channel: str) -> str:
    """The beginning of `body` and the link to the rest, in one SMS segment on SMS, in
    `LONG_TEXT` characters elsewhere."""
    tail = f"{ELLIPSIS} {link}"
    if channel != "sms":
        return truncate(body, max(0, LONG_TEXT - len(tail))).rstrip() + tail
    low, high = 0, len(body)
    while low < high:  # the longest beginning that keeps it one segment
        middle = (low + high + 1) // 2
        if sms_segments(truncate(body, middle).rstrip() + tail) == 1:
            low = middle
        else:
            high = middle - 1
    return truncate(body, low).rstrip() + tail


def lighten(
    message: OutboundMessage, attachments: Sequence[Mapping[str, Any]], how: Lighten
) -> OutboundMessage:
    media = media_of(attachments, how.link)
    files = media if how.media_ok and not how.data_saver else []
    body = message.body
    if media and not files:
        body = f"{body}\n{how.link}" if body else how.link
    if how.data_saver and is_long(body, message.channel):
        body = shorten(message.body, how.link, message.channel)
    return replace(message, body=body, media=tuple(files), media_urls=tuple(m.url for m in files))
