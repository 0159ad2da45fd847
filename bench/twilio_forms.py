"""Realistic, signed Twilio webhook forms for the benchmarks."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator

ACCOUNT_SID = "AC" + "b" * 32
AUTH_TOKEN = "bench-auth-token"  # noqa: S105
TO = "+14155550100"


def sender(i: int) -> str:
    return f"+1415555{1000 + (i % 9000):04d}"


def inbound_form(i: int) -> dict[str, str]:
    """The 19 fields Twilio posts for an inbound SMS."""
    sid = f"SM{i:032x}"
    return {
        "ToCountry": "US",
        "ToState": "CA",
        "SmsMessageSid": sid,
        "NumMedia": "0",
        "ToCity": "SAN FRANCISCO",
        "FromZip": "94105",
        "SmsSid": sid,
        "FromState": "CA",
        "SmsStatus": "received",
        "FromCity": "SAN FRANCISCO",
        "Body": f"Count me in for Saturday's canvass #{i}",
        "FromCountry": "US",
        "To": TO,
        "ToZip": "94105",
        "NumSegments": "1",
        "MessageSid": sid,
        "AccountSid": ACCOUNT_SID,
        "From": sender(i),
        "ApiVersion": "2010-04-01",
    }


def status_form(sid: str, status: str, to: str) -> dict[str, str]:
    return {
        "MessageSid": sid,
        "SmsSid": sid,
        "MessageStatus": status,
        "SmsStatus": status,
        "AccountSid": ACCOUNT_SID,
        "From": TO,
        "To": to,
        "ApiVersion": "2010-04-01",
        "RawDlrDoneDate": "2611241200",
    }


def write_signed(forms: list[dict[str, str]], url: str, out: Path) -> Path:
    """One line per request: `<signature> <urlencoded body>`."""
    validator = RequestValidator(AUTH_TOKEN)
    with out.open("w") as fh:
        for form in forms:
            signature = validator.compute_signature(url, form)
            fh.write(f"{signature} {urlencode(form)}\n")
    return out
