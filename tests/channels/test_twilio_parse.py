"""Twilio verify() and parse() on the gateway's frozen request, without the app."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from urllib.parse import urlsplit

import httpx
import pytest
from twilio.request_validator import RequestValidator

from channels.base import (
    InvalidRecipient,
    InvalidSignature,
    MalformedPayload,
    RecipientOptedOut,
    SendError,
    StatusUpdate,
    Throttled,
    WebhookRequest,
    WindowClosed,
)
from channels.twilio import TwilioAdapter, TwilioConfig
from channels.twilio.errors import STATUSES
from tests.channels.twilio_case import ACCOUNT_SID, AUTH_TOKEN, form, sign

# twilio-python's own test vector (PROVIDERS.md).
VECTOR_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
VECTOR_PARAMS = (
    ("CallSid", "CA1234567890ABCDE"),
    ("Digits", "1234"),
    ("From", "+14158675309"),
    ("To", "+18005551212"),
    ("Caller", "+14158675309"),
)
VECTOR_SIGNATURE = "RSOYDt4T1cUTdK1PDd93/VVr8B8="


def _adapter(token: str = AUTH_TOKEN) -> TwilioAdapter:
    config = TwilioConfig(account_sid=ACCOUNT_SID, auth_token=token, sms_from="+14155550199")
    return TwilioAdapter(config, httpx.AsyncClient())


def _request(
    url: str, pairs: tuple[tuple[str, str], ...], signature: str | None, kind: str = ""
) -> WebhookRequest:
    parts = urlsplit(url)
    headers = {"x-twilio-signature": signature} if signature else {}
    return WebhookRequest(
        method="POST",
        url=url,
        path=parts.path,
        query=dict(p.split("=", 1) for p in parts.query.split("&") if p),
        headers=headers,
        body=b"",
        form=pairs,
        kind=kind,
    )


@pytest.mark.parametrize(
    "url",
    [VECTOR_URL, "https://mycompany.com:443/myapp.php?foo=1&bar=2"],
    ids=["as signed", "with the default port"],
)
def test_public_vector_validates(url: str) -> None:
    _adapter("12345").verify(_request(url, VECTOR_PARAMS, VECTOR_SIGNATURE))


@pytest.mark.parametrize(
    ("label", "url", "params", "signature"),
    [
        ("no header", VECTOR_URL, VECTOR_PARAMS, None),
        (
            "query string dropped",
            "https://mycompany.com/myapp.php",
            VECTOR_PARAMS,
            VECTOR_SIGNATURE,
        ),
        ("a param changed", VECTOR_URL, (*VECTOR_PARAMS[:-1], ("Caller", "+1")), VECTOR_SIGNATURE),
        ("a param added", VECTOR_URL, (*VECTOR_PARAMS, ("X", "1")), VECTOR_SIGNATURE),
        (
            "http instead of https",
            VECTOR_URL.replace("https", "http"),
            VECTOR_PARAMS,
            VECTOR_SIGNATURE,
        ),
    ],
)
def test_public_vector_tampered_is_rejected(
    label: str, url: str, params: tuple[tuple[str, str], ...], signature: str | None
) -> None:
    with pytest.raises(InvalidSignature):
        _adapter("12345").verify(_request(url, params, signature))


def test_repeated_params_are_all_signed() -> None:
    url = "https://rallypoint.example.org/webhooks/twilio"
    pairs = (("MessageSid", "SM1"), ("From", "+14155550100"), ("Tag", "a"), ("Tag", "b"))

    class MultiDict(dict[str, list[str]]):
        def getall(self, name: str) -> list[str]:
            return self[name]

    signature = RequestValidator(AUTH_TOKEN).compute_signature(
        url, MultiDict(MessageSid=["SM1"], From=["+14155550100"], Tag=["a", "b"])
    )
    _adapter().verify(_request(url, pairs, signature))
    with pytest.raises(InvalidSignature):
        _adapter().verify(_request(url, pairs[:-1], signature))


def _status(**changes: str) -> list[StatusUpdate]:
    params = {**form("status_sent.json"), **changes}
    url = "https://rallypoint.example.org/webhooks/twilio/status"
    request = _request(url, tuple(params.items()), sign(url, params), kind="status")
    adapter = _adapter()
    adapter.verify(request)
    return adapter.parse(request)  # type: ignore[return-value]


@pytest.mark.parametrize(("twilio", "ours"), sorted(STATUSES.items()))
def test_every_twilio_status_maps(twilio: str, ours: str) -> None:
    [update] = _status(MessageStatus=twilio)
    assert update.status == ours
    assert (update.failure is not None) == (ours in ("failed", "undelivered"))


@pytest.mark.parametrize("status", ["receiving", "received", "partially_delivered", "EXOTIC"])
def test_other_statuses_are_skipped_not_raised(status: str) -> None:
    assert _status(MessageStatus=status) == []


@pytest.mark.parametrize(
    ("code", "failure"),
    [
        ("21610", RecipientOptedOut),
        ("63016", WindowClosed),
        ("30003", InvalidRecipient),
        ("30005", InvalidRecipient),
        ("30006", InvalidRecipient),
        ("21211", InvalidRecipient),
        ("21614", InvalidRecipient),
        ("30001", Throttled),
        ("30007", SendError),
        ("", SendError),
        ("99999", SendError),
    ],
)
def test_failure_codes_are_classified(code: str, failure: type[SendError]) -> None:
    [update] = _status(MessageStatus="undelivered", ErrorCode=code)
    assert type(update.failure) is failure
    assert update.error_code == (code or None)


@pytest.mark.parametrize(
    ("from_", "to", "channel"),
    [
        ("+14155550199", "+14155550100", "sms"),
        ("whatsapp:+14155550199", "whatsapp:+254712345678", "whatsapp"),
        ("MG9752274e9e519418a7406176694466fa", "whatsapp:+254712345678", "whatsapp"),
    ],
)
def test_status_channel_from_the_prefix(from_: str, to: str, channel: str) -> None:
    [update] = _status(From=from_, To=to)
    assert update.channel == channel


def test_inbound_needs_a_form() -> None:
    url = "https://rallypoint.example.org/webhooks/twilio"
    request = WebhookRequest("POST", url, "/webhooks/twilio", {}, {}, b"{}", form=None)
    with pytest.raises(MalformedPayload):
        _adapter().parse(request)


def test_json_body_signed_by_hash_verifies_then_is_malformed() -> None:
    body = b'{"MessageSid": "SM1"}'
    url = (
        "https://rallypoint.example.org/webhooks/twilio?bodySHA256="
        + hashlib.sha256(body).hexdigest()
    )
    signature = RequestValidator(AUTH_TOKEN).compute_signature(url, {})
    request = WebhookRequest(
        "POST",
        url,
        "/webhooks/twilio",
        {"bodySHA256": hashlib.sha256(body).hexdigest()},
        {"x-twilio-signature": signature},
        body,
    )
    adapter = _adapter()
    adapter.verify(request)
    with pytest.raises(MalformedPayload):
        adapter.parse(request)
    with pytest.raises(InvalidSignature):
        adapter.verify(replace(request, body=b'{"MessageSid": "SM2"}'))
