"""Twilio's own shapes: the inbound and status-callback forms, the Messages API answers.

Everything Twilio posts is a string; these dataclasses pick out what we use and leave
the rest to `raw` (Twilio adds fields without notice).
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urlparse

import phonenumbers
from twilio.request_validator import add_port, remove_port

from channels.base import MalformedPayload
from channels.twilio.errors import parse_code

WHATSAPP_PREFIX = "whatsapp:"
MAX_MEDIA = 10  # Twilio attaches at most 10 media items to one message
MEDIA_FIELDS = tuple((f"MediaUrl{i}", f"MediaContentType{i}") for i in range(MAX_MEDIA))


def form_dict(pairs: tuple[tuple[str, str], ...]) -> dict[str, str]:
    """The form as a dict (a repeated name keeps its last value)."""
    return dict(pairs)


# One encoder for every call: json.dumps builds a new one per call for these options.
_AUDIT_JSON = json.JSONEncoder(ensure_ascii=False, sort_keys=True)


def form_json(pairs: tuple[tuple[str, str], ...]) -> str:
    """The form kept for audit (the signature is a header, so it is never in here)."""
    return _AUDIT_JSON.encode(form_dict(pairs))


def is_whatsapp(address: str) -> bool:
    return address.strip().lower().startswith(WHATSAPP_PREFIX)


def strip_whatsapp(address: str) -> str:
    text = address.strip()
    return text[len(WHATSAPP_PREFIX) :] if is_whatsapp(text) else text


def with_whatsapp(address: str) -> str:
    return address if is_whatsapp(address) else WHATSAPP_PREFIX + address


@dataclass(frozen=True)
class InboundForm:
    message_sid: str
    from_: str
    to: str
    body: str
    profile_name: str | None
    media: tuple[tuple[str, str | None], ...]  # (url, content type)
    button_text: str | None
    button_payload: str | None
    latitude: str | None
    longitude: str | None

    @classmethod
    def from_form(cls, form: Mapping[str, str]) -> InboundForm:
        media: list[tuple[str, str | None]] = []
        for url_field, type_field in MEDIA_FIELDS:
            url = form.get(url_field)
            if url:
                media.append((url, form.get(type_field) or None))
        return cls(
            message_sid=form.get("MessageSid") or form.get("SmsMessageSid") or "",
            from_=form.get("From", ""),
            to=form.get("To", ""),
            body=form.get("Body", ""),
            profile_name=form.get("ProfileName") or None,
            media=tuple(media),
            button_text=form.get("ButtonText") or None,
            button_payload=form.get("ButtonPayload") or None,
            latitude=form.get("Latitude") or None,
            longitude=form.get("Longitude") or None,
        )

    @property
    def text(self) -> str:
        """The message text: Body, else the button pressed, else the location shared."""
        if self.body.strip():
            return self.body
        if self.button_text or self.button_payload:
            return self.button_text or self.button_payload or ""
        if self.latitude and self.longitude:
            return f"location: {self.latitude},{self.longitude}"
        return self.body


@dataclass(frozen=True)
class StatusForm:
    message_sid: str
    status: str
    error_code: int | None
    error_message: str | None
    from_: str
    to: str

    @classmethod
    def from_form(cls, form: Mapping[str, str]) -> StatusForm:
        return cls(
            message_sid=form.get("MessageSid") or form.get("SmsSid") or "",
            status=(form.get("MessageStatus") or form.get("SmsStatus") or "").strip().lower(),
            error_code=parse_code(form.get("ErrorCode")),
            error_message=form.get("ErrorMessage") or None,
            from_=form.get("From", ""),
            to=form.get("To", ""),
        )


@dataclass(frozen=True)
class ApiError:
    """Twilio's error body: {"code": 21610, "message": "...", "more_info": "...", "status": 400}."""

    code: int | None
    message: str

    @classmethod
    def from_body(cls, content: bytes) -> ApiError:
        try:
            data: Any = json.loads(content)
        except ValueError:
            return cls(None, "")
        if not isinstance(data, dict):
            return cls(None, "")
        return cls(parse_code(data.get("code")), str(data.get("message") or ""))


@dataclass(frozen=True)
class CreatedMessage:
    """The 201 answer to a send: the Message resource."""

    sid: str
    status: str
    num_segments: int | None
    error_code: int | None = None
    error_message: str = ""

    @classmethod
    def from_body(cls, content: bytes) -> CreatedMessage | None:
        try:
            data: Any = json.loads(content)
        except ValueError:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("sid"), str):
            return None
        segments = str(data.get("num_segments") or "")
        return cls(
            sid=data["sid"],
            status=str(data.get("status") or "queued").lower(),
            num_segments=int(segments) if segments.isdigit() else None,
            error_code=parse_code(data.get("error_code")),
            error_message=str(data.get("error_message") or ""),
        )


def form_signature_matches(
    token: bytes, url: str, form: tuple[tuple[str, str], ...], signature: str
) -> bool:
    """Whether `signature` is Twilio's HMAC-SHA1 of `url` and the form, as twilio's
    RequestValidator.validate decides it for a form post, at half its cost.

    validate() accepts the URL with or without its default port and computes both
    HMACs every time; here the variant that is the URL as given goes first and the other
    is computed only on a mismatch. Each comparison is constant-time.
    """
    # The SDK signs the URL, then each name + value by name, each name's distinct values
    # sorted: the distinct (name, value) pairs in sorted order.
    signed = "".join([name + value for name, value in sorted(set(form))])
    expected = signature.encode("utf-8")
    keyed = _keyed_sha1(token)
    for candidate in url_variants(url):
        mac = keyed.copy()  # the key schedule done once per token, not per request
        mac.update((candidate + signed).encode("utf-8"))
        if hmac.compare_digest(binascii.b2a_base64(mac.digest(), newline=False), expected):
            return True
    return False


@lru_cache(maxsize=16)
def _keyed_sha1(token: bytes) -> hmac.HMAC:
    """HMAC-SHA1 keyed with `token`, to be copied for each message."""
    return hmac.new(token, digestmod=hashlib.sha1)


@lru_cache(maxsize=256)
def url_variants(url: str) -> tuple[str, str]:
    """The URL without and with its default port (as validate() makes them), `url` first."""
    parsed = urlparse(url)
    without, with_port = remove_port(parsed), add_port(parsed)
    return (with_port, without) if with_port == url else (without, with_port)


NANP = re.compile(r"\+1[0-9]{10}", re.ASCII)


def canonical_phone(raw: str) -> str:
    """E.164 from a Twilio address (`+1…` or `whatsapp:+1…`); MalformedPayload otherwise."""
    text = strip_whatsapp(raw)
    if NANP.fullmatch(text):
        # phonenumbers takes every +1 and ten digits as a possible number, as it is.
        return text
    canonical, problem = _parsed_phone(text)
    if canonical is None:
        raise MalformedPayload(problem)
    return canonical


@lru_cache(maxsize=4096)
def _parsed_phone(text: str) -> tuple[str | None, str]:
    """(E.164, "") or (None, why not); senders write again, so answers are kept."""
    try:
        number = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException as exc:
        return None, f"sender is not a phone number: {exc}"
    # Possible, not valid: Twilio delivered from this number, so it exists even if our
    # copy of the numbering plan is older than the range it belongs to.
    if not phonenumbers.is_possible_number(number):
        return None, "sender is not a phone number"
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), ""
