"""Canonical addresses: E.164 for sms/whatsapp, chat id for telegram, lower-cased email;
for signal an E.164 number or a lower-cased Signal username (or account UUID)."""

from __future__ import annotations

import re

import phonenumbers

PHONE_CHANNELS = frozenset({"sms", "whatsapp"})
_EMAIL = re.compile(
    r"^[^@\s<>()\[\],;:\"]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+$"
)
TELEGRAM_CHAT_ID = re.compile(r"^-?\d{1,20}$")
# A Signal username: a nickname of 3-32 letters, digits or _, a dot and a 2-10 digit number;
# a sender that hides its number is known by its account UUID.
SIGNAL_USERNAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{2,31}\.\d{2,10}$")
SIGNAL_UUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
# What normalize_phone returns: "+", the country code and the national number.
E164 = re.compile(r"^\+[1-9]\d{1,14}$")


class InvalidAddress(ValueError):
    pass


def normalize_phone(raw: str, default_region: str | None = None) -> str:
    text = raw.strip()
    if text.lower().startswith("whatsapp:"):
        text = text[len("whatsapp:") :]
    try:
        number = phonenumbers.parse(text, None if text.startswith("+") else default_region)
    except phonenumbers.NumberParseException as exc:
        hint = "" if text.startswith("+") or default_region else " (give +country code)"
        raise InvalidAddress(f"not a phone number: {raw!r}{hint}") from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidAddress(f"not a valid phone number: {raw!r}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_email(raw: str) -> str:
    text = raw.strip().lower()
    if not _EMAIL.match(text) or len(text) > 320:
        raise InvalidAddress(f"not an email address: {raw!r}")
    return text


def normalize_address(channel: str, raw: str, default_region: str | None = None) -> str:
    """Return the canonical form of `raw` on `channel`, or raise InvalidAddress."""
    if channel in PHONE_CHANNELS:
        return normalize_phone(raw, default_region)
    if channel == "email":
        return normalize_email(raw)
    if channel == "telegram":
        text = raw.strip()
        if not TELEGRAM_CHAT_ID.match(text):
            raise InvalidAddress(f"not a Telegram chat id: {raw!r}")
        return text
    if channel == "signal":
        return normalize_signal(raw, default_region)
    raise InvalidAddress(f"unknown channel: {channel!r}")


def normalize_signal(raw: str, default_region: str | None = None) -> str:
    text = raw.strip().removeprefix("u:")
    if SIGNAL_USERNAME.match(text) or SIGNAL_UUID.match(text):
        return text.lower()
    try:
        return normalize_phone(text, default_region)
    except InvalidAddress:
        raise InvalidAddress(
            f"not a Signal address (a phone number or a username like name.01): {raw!r}"
        ) from None
