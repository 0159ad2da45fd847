"""Africa's Talking callbacks, parsed (pure): table-driven over real-shaped forms
(channels/africastalking/testdata), and the path secret checked before anything else."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlencode

import httpx
import pytest

from channels.africastalking import AfricasTalkingAdapter, AfricasTalkingConfig
from channels.base import (
    InboundMessage,
    InvalidRecipient,
    InvalidSignature,
    MalformedPayload,
    RecipientOptedOut,
    SendError,
    StatusUpdate,
    WebhookRequest,
)
from tests.channels.africastalking_case import API_KEY, SECRET, USERNAME, load_testdata

ADAPTER = AfricasTalkingAdapter(
    AfricasTalkingConfig(USERNAME, API_KEY, SECRET), httpx.AsyncClient()
)


def request(form: dict[str, str], kind: str = "", secret: str = SECRET) -> WebhookRequest:
    path = "/webhooks/africastalking/<secret>" + (f"/{kind}" if kind else "")
    return WebhookRequest(
        method="POST",
        url="https://rallypoint.example.org" + path,
        path=path,
        query={},
        headers={"content-type": "application/x-www-form-urlencoded"},
        body=urlencode(form).encode(),
        form=tuple(form.items()),
        kind=kind,
        path_secret=secret,
    )


def test_inbound_sms() -> None:
    ADAPTER.verify(request(load_testdata("inbound_sms.json")))
    [event] = ADAPTER.parse(request(load_testdata("inbound_sms.json")))
    assert isinstance(event, InboundMessage)
    assert (event.channel, event.address, event.provider_message_id, event.body) == (
        "sms",
        "+254711000111",
        "3f1f64c9-0c4e-4b2d-9a1c-6f0e6e0b7a21",
        "Habari! Count me in for Saturday.",
    )
    assert event.received_at == datetime(2026, 3, 4, 14, 58, 7, tzinfo=UTC)
    assert event.raw is not None and "linkId" in event.raw


@pytest.mark.parametrize(
    ("sender", "address"),
    [("+254711000111", "+254711000111"), ("254711000111", "+254711000111")],
)
def test_inbound_sender_becomes_e164(sender: str, address: str) -> None:
    form = {**load_testdata("inbound_sms.json"), "from": sender}
    [event] = ADAPTER.parse(request(form))
    assert isinstance(event, InboundMessage) and event.address == address


@pytest.mark.parametrize(
    ("date", "expected"),
    [
        ("2026-03-04T14:58:07.000Z", datetime(2026, 3, 4, 14, 58, 7, tzinfo=UTC)),
        ("yesterday", None),
        ("", None),
    ],
)
def test_inbound_date(date: str, expected: datetime | None) -> None:
    [event] = ADAPTER.parse(request({**load_testdata("inbound_sms.json"), "date": date}))
    assert isinstance(event, InboundMessage) and event.received_at == expected


@pytest.mark.parametrize(
    ("name", "status", "failure", "code"),
    [
        ("delivery_success.json", "delivered", None, None),
        ("delivery_buffered.json", "sent", None, None),
        ("delivery_failed_user_in_blacklist.json", "failed", RecipientOptedOut, "UserInBlackList"),
        ("delivery_rejected_does_not_exist.json", "failed", InvalidRecipient, "UserDoesNotExist"),
    ],
)
def test_delivery_reports(
    name: str, status: str, failure: type[SendError] | None, code: str | None
) -> None:
    [event] = ADAPTER.parse(request(load_testdata(name), "delivery"))
    assert isinstance(event, StatusUpdate)
    assert (event.channel, event.provider_message_id, event.status) == (
        "sms",
        "ATXid_03cb5ecf11ce748794c0f9a85c276259",
        status,
    )
    assert type(event.failure) is failure if failure else event.failure is None
    assert event.error_code == code


@pytest.mark.parametrize(
    ("status", "reason", "expected", "failure"),
    [
        ("Sent", None, "sent", None),
        ("Submitted", None, "sent", None),
        ("Buffered", None, "sent", None),
        ("Success", None, "delivered", None),
        ("Failed", "DeliveryFailure", "failed", SendError),
        ("Rejected", "UserIsInactive", "failed", InvalidRecipient),
        ("Failed", "NotNetworkSubscriber", "failed", InvalidRecipient),
        ("Failed", "SomethingNew", "failed", SendError),
        ("Failed", None, "failed", SendError),
    ],
)
def test_every_delivery_status(
    status: str, reason: str | None, expected: str, failure: type[SendError] | None
) -> None:
    form = {"id": "ATXid_1", "status": status, "phoneNumber": "+254711000111"}
    if reason:
        form["failureReason"] = reason
    [event] = ADAPTER.parse(request(form, "delivery"))
    assert isinstance(event, StatusUpdate) and event.status == expected
    assert (type(event.failure) if event.failure else None) is failure


def test_an_unknown_delivery_status_changes_nothing() -> None:
    assert ADAPTER.parse(request({"id": "ATXid_1", "status": "Teleported"}, "delivery")) == []


@pytest.mark.parametrize(
    ("form", "kind"),
    [
        ({"text": "hi", "to": "20880"}, ""),  # no id, no from
        ({"id": "x", "from": "not a number", "text": "hi"}, ""),
        ({"status": "Success"}, "delivery"),  # no id
        ({"id": "ATXid_1"}, "delivery"),  # no status
        ({"id": "ATXid_1", "status": "Success"}, "subscription"),  # no such callback
    ],
)
def test_malformed_callbacks(form: dict[str, str], kind: str) -> None:
    with pytest.raises(MalformedPayload):
        ADAPTER.parse(request(form, kind))


def test_a_body_that_is_no_form_is_malformed() -> None:
    frozen = request({})
    with pytest.raises(MalformedPayload):
        ADAPTER.parse(WebhookRequest(**{**frozen.__dict__, "form": None}))


@pytest.mark.parametrize(
    "secret", ["", "cb-not-the-s3cret-Hh3u", SECRET[:-1], SECRET + "x", SECRET.upper()]
)
def test_a_wrong_or_missing_secret_is_refused(secret: str) -> None:
    with pytest.raises(InvalidSignature) as raised:
        ADAPTER.verify(request(load_testdata("inbound_sms.json"), secret=secret))
    assert SECRET not in str(raised.value)


def test_the_secret_stays_out_of_the_adapter_repr() -> None:
    assert SECRET not in repr(ADAPTER.config) and API_KEY not in repr(ADAPTER.config)
    assert SECRET not in repr(request({}))
