"""Twilio's own shapes: the inbound and status-callback forms, the Messages API answers.

Everything Twilio posts is a string; these dataclasses pick out what we use and leave
the rest to `raw` (Twilio adds fields without notice).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import phonenumbers

from channels.base import MalformedPayload
from channels.twilio.errors import parse_code

WHATSAPP_PREFIX = "whatsapp:"
MAX_MEDIA = 10  # Twilio attaches at most 10 media items to one message


def form_dict(pairs: tuple[tuple[str, str], ...]) -> dict[str, str]:
    """The form as a dict (a repeated name keeps its last value)."""
    return dict(pairs)


def form_json(pairs: tuple[tuple[str, str], ...]) -> str:
    """The form kept for audit (the signature is a header, so it is never in here)."""
    return json.dumps(form_dict(pairs), ensure_ascii=False, sort_keys=True)


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
        for index in range(MAX_MEDIA):
            url = form.get(f"MediaUrl{index}")
            if url:
                media.append((url, form.get(f"MediaContentType{index}") or None))
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


class FormParams(dict[str, list[str]]):
    """Posted params for RequestValidator, repeated names kept (it calls `getall`)."""

    def getall(self, name: str) -> list[str]:
        return self[name]


def signed_params(form: tuple[tuple[str, str], ...]) -> FormParams:
    params = FormParams()
    for name, value in form:
        params.setdefault(name, []).append(value)
    return params


def canonical_phone(raw: str) -> str:
    """E.164 from a Twilio address (`+1…` or `whatsapp:+1…`); MalformedPayload otherwise."""
    text = strip_whatsapp(raw)
    try:
        number = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException as exc:
        raise MalformedPayload(f"sender is not a phone number: {exc}") from exc
    # Possible, not valid: Twilio delivered from this number, so it exists even if our
    # copy of the numbering plan is older than the range it belongs to.
    if not phonenumbers.is_possible_number(number):
        raise MalformedPayload("sender is not a phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
