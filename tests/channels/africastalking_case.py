"""Africa's Talking's webhook contract case and send table, plus helpers its tests share.
Africa's Talking signs nothing: its callbacks are authenticated by the secret in their
URL's path, so a "missing signature" is that segment left out and a wrong one is another
secret in its place."""

from __future__ import annotations

import json
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from channels.africastalking import AfricasTalkingConfig
from channels.africastalking.fake import FakeAfricasTalking, Reply
from channels.base import (
    ChannelAdapter,
    ChannelMisconfigured,
    InvalidRecipient,
    OutboundMessage,
    ProviderUnavailable,
    RecipientOptedOut,
    SendError,
    Throttled,
)
from channels.registry import ChannelConfigs
from tests.channels.contract import SignedRequest
from tests.channels.send_contract import SendCase, registered

TESTDATA = Path(__file__).resolve().parents[2] / "channels" / "africastalking" / "testdata"
# Distinctive, so that the log checks find them anywhere they leak.
USERNAME = "rallypoint-ke"
API_KEY = "atsk_9f8e7d6c5b4a39281706f5e4d3c2b1a0contractApiKey"
SECRET = "cb-s3cret-Zq8WvT2nLx5RpK7y"
SENDER_ID = "RALLYPT"
SHORT_CODE = "20880"
API_BASE = "https://api.africastalking.test"

SETTINGS: dict[str, Any] = {
    "africastalking_username": USERNAME,
    "africastalking_api_key": API_KEY,
    "africastalking_callback_secret": SECRET,
    "africastalking_sender_id": SENDER_ID,
    "africastalking_api_base": API_BASE,
}
FORM_HEADERS = {"Content-Type": "application/x-www-form-urlencoded"}


def load_testdata(name: str) -> dict[str, Any]:
    """A testdata file (channels/africastalking/testdata/*.json)."""
    data: dict[str, Any] = json.loads((TESTDATA / name).read_text())
    return data


def callback_path(kind: str = "", secret: str = SECRET) -> str:
    """/webhooks/africastalking/{secret} (inbound) or …/{secret}/{kind} (e.g. delivery)."""
    return f"/webhooks/africastalking/{secret}" + (f"/{kind}" if kind else "")


def callback(form: dict[str, str], kind: str = "", secret: str = SECRET) -> SignedRequest:
    """The form POST Africa's Talking makes to the callback URL with `secret` in it."""
    return SignedRequest(
        "POST", callback_path(kind, secret), dict(FORM_HEADERS), urlencode(form).encode()
    )


def inbound_form(message_id: str, sender: str, text: str) -> dict[str, str]:
    form: dict[str, str] = load_testdata("inbound_sms.json")
    form.update(id=message_id, text=text)
    form["from"] = sender
    return form


class AfricasTalkingCase:
    provider = "africastalking"
    channel = "sms"
    signature_header = ""  # none: the secret is in the path
    settings = SETTINGS
    secrets = (SECRET, API_KEY)

    def inbound(self, provider_message_id: str, sender: str, body: str) -> SignedRequest:
        return callback(inbound_form(provider_message_id, sender, body))

    def sender(self) -> str:
        return "+254711000111"

    def without_signature(self, request: SignedRequest) -> SignedRequest:
        """The same callback at /webhooks/africastalking, the secret left out."""
        return replace(request, path=request.path.replace(f"/{SECRET}", "", 1))

    def wrong_signature(self, request: SignedRequest) -> SignedRequest:
        return replace(request, path=request.path.replace(SECRET, "cb-not-the-s3cret-Hh3u", 1))

    def signed_garbage(self) -> SignedRequest:
        # At the right URL, but no `id` or `from`: not an incoming message.
        return callback({"text": "hello", "to": SHORT_CODE})


# The send contract (tests/channels/send_contract.py): Africa's Talking's answers at the
# wire, one row for every per-recipient statusCode and every kind of HTTP failure.

SEND_TO = "+254711000111"
MESSAGE_ID = r"ATXid_[0-9a-f]{32}"
SEND_CASES: list[SendCase[Reply]] = [
    SendCase("100 Processed", Reply.ok(100), result_id=MESSAGE_ID),
    SendCase("101 Sent", Reply.ok(101), result_id=MESSAGE_ID),
    SendCase("102 Queued", Reply.ok(102), result_id=MESSAGE_ID),
    SendCase("401 RiskHold", Reply.recipient(401), SendError, "401"),
    SendCase("402 InvalidSenderId", Reply.recipient(402), ChannelMisconfigured, "402"),
    SendCase("403 InvalidPhoneNumber", Reply.recipient(403), InvalidRecipient, "403"),
    SendCase("404 UnsupportedNumberType", Reply.recipient(404), InvalidRecipient, "404"),
    SendCase("405 InsufficientBalance", Reply.recipient(405), ChannelMisconfigured, "405"),
    SendCase("406 UserInBlacklist", Reply.recipient(406), RecipientOptedOut, "406"),
    SendCase("407 CouldNotRoute", Reply.recipient(407), InvalidRecipient, "407"),
    SendCase("409 DoNotDisturbRejection", Reply.recipient(409), SendError, "409"),
    SendCase("500 InternalServerError", Reply.recipient(500), ProviderUnavailable, "500"),
    SendCase("501 GatewayError", Reply.recipient(501), ProviderUnavailable, "501"),
    SendCase("502 RejectedByGateway", Reply.recipient(502), ProviderUnavailable, "502"),
    SendCase("503 a 5xx code we do not know", Reply.recipient(503), ProviderUnavailable, "503"),
    SendCase("unknown code 418", Reply.recipient(418), SendError, "418"),
    SendCase(
        "no recipient: InvalidSenderId",
        Reply.no_recipients("InvalidSenderId"),
        ChannelMisconfigured,
        "402",
    ),
    SendCase("no recipient, other reason", Reply.no_recipients("Rejected"), SendError),
    SendCase("HTTP 429 with Retry-After", Reply.throttled(7), Throttled, None, 7.0),
    SendCase("HTTP 429 without Retry-After", Reply.throttled(), Throttled),
    SendCase(
        "HTTP 401 bad key",
        Reply.http(401, "The supplied authentication is invalid"),
        ChannelMisconfigured,
    ),
    SendCase(
        "HTTP 400 bad request", Reply.http(400, f"Invalid phone number: {SEND_TO}"), SendError
    ),
    SendCase("HTTP 500", Reply.http(500), ProviderUnavailable),
    SendCase("HTTP 503", Reply.http(503), ProviderUnavailable),
    SendCase("connection refused", Reply.network(), ProviderUnavailable),
    SendCase("read timeout", Reply.timeout(), ProviderUnavailable),
]


class AfricasTalkingSendRig:
    provider = "africastalking"
    # The recipient's number too: never in a log line or an error either.
    secrets = (API_KEY, SECRET, SEND_TO)
    cases = SEND_CASES

    def message(self) -> OutboundMessage:
        return OutboundMessage(1, "sms", SEND_TO, "Phone bank tonight: the secret plan")

    def open(self, answer: Reply) -> AbstractAsyncContextManager[ChannelAdapter]:
        fake = FakeAfricasTalking(USERNAME, API_KEY)
        fake.script(SEND_TO, answer)
        config = AfricasTalkingConfig(
            USERNAME, API_KEY, SECRET, sender_id=SENDER_ID, api_base=API_BASE
        )
        return registered(ChannelConfigs(africastalking=config), "sms", httpx.MockTransport(fake))
