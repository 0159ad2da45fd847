"""What each simulated supporter sent and was sent, in order: the simulator's chat view.

Outbound entries come from the provider fakes' own records (what the app asked each
provider to deliver, to which address), read after every request a fake answers."""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

from channels.email.fake import FakeSmtpServer
from channels.telegram.fake import FakeTelegramApi
from channels.twilio.fake import FakeTwilio
from channels.whatsapp_cloud.fake import FakeWhatsAppCloud

MAX_ENTRIES = 5000  # a long demo session forgets its oldest lines


@dataclass(frozen=True)
class Entry:
    seq: int
    direction: str  # "in": the supporter wrote it; "out": the supporter received it
    channel: str
    address: str
    text: str
    at: datetime


@dataclass
class Transcript:
    entries: list[Entry] = field(default_factory=list)
    _seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _seen: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, direction: str, channel: str, address: str, text: str) -> None:
        entry = Entry(next(self._seq), direction, channel, address, text, datetime.now(UTC))
        self.entries.append(entry)
        del self.entries[:-MAX_ENTRIES]

    def between(self, channel: str, address: str, after: int = 0) -> list[Entry]:
        """The entries of one supporter address, oldest first, numbered above `after`."""
        key = address.lower()
        return [
            e
            for e in self.entries
            if e.seq > after and e.channel == channel and e.address.lower() == key
        ]

    def observe(
        self,
        twilio: FakeTwilio,
        whatsapp: FakeWhatsAppCloud,
        telegram: FakeTelegramApi,
        smtp: FakeSmtpServer,
    ) -> None:
        for sent in self._new("twilio", twilio.sent):
            to = sent.get("To") or ""
            channel = "whatsapp" if to.startswith("whatsapp:") else "sms"
            body = sent.get("Body") or ""
            media = sent.form.get("MediaUrl") or []
            self.add("out", channel, to.removeprefix("whatsapp:"), _with_media(body, media))
        for record in self._new("whatsapp", whatsapp.accepted):
            self.add("out", "whatsapp", "+" + str(record.json.get("to", "")), _graph(record.json))
        for chat_id, texts in list(telegram.sent.items()):
            for text in self._new(f"telegram:{chat_id}", texts):
                self.add("out", "telegram", chat_id, text)
        for mail in self._new("smtp", smtp.messages):
            for rcpt in mail.rcpt_tos:
                self.add("out", "email", rcpt, _mail_text(mail.message))

    def _new(self, key: str, items: list[Any]) -> list[Any]:
        start = self._seen[key]
        self._seen[key] = len(items)
        return items[start:]


def _with_media(body: str, media: list[str]) -> str:
    return "\n".join([body, *(f"[attachment] {url}" for url in media)]).strip()


def _graph(payload: dict[str, Any]) -> str:
    """The text of a Graph API message request, as the supporter would see it."""
    kind = str(payload.get("type", ""))
    part = payload.get(kind)
    if not isinstance(part, dict):
        return f"[{kind}]"
    if kind == "text":
        return str(part.get("body", ""))
    if kind == "template":
        return f"[template {part.get('name', '')}]"
    caption = part.get("caption") or ""
    return _with_media(str(caption), [f"{kind}: {part.get('link', '')}"])


def _mail_text(message: EmailMessage) -> str:
    subject = message.get("Subject", "")
    body = message.get_body(("plain",))
    text = body.get_content() if isinstance(body, EmailMessage) else ""
    return f"{subject}\n\n{text}".strip() if subject else str(text).strip()
