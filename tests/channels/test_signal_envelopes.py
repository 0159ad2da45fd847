"""Signal envelopes (real shapes, channels/signal/testdata/) into our events, table-driven:
text and attachments are inbound messages, receipts are delivered / read statuses, the
rest is skipped; both receive modes' framings read the same."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from channels.base import Attachment, InboundMessage, MalformedPayload, StatusUpdate
from channels.signal.envelopes import (
    canonical_address,
    envelope_events,
    parse_frame,
    parse_receive_body,
)
from tests.channels.signal_case import NUMBER, load

UUID = "6e4a0b52-8c1f-4a5e-9f1d-2b7c3e9a1d44"


def test_a_text_message_is_inbound_with_an_id_of_sender_and_timestamp() -> None:
    [event] = envelope_events(load("text"), account=NUMBER)
    assert isinstance(event, InboundMessage)
    assert (event.channel, event.address, event.body) == (
        "signal",
        "+254712345678",
        "Flyers are up at the library",
    )
    # The sender's account UUID and Signal's timestamp: the same message redelivered has
    # the same id, and no phone number sits in the id's plain column.
    assert event.provider_message_id == f"{UUID}:1772636400123"
    assert event.profile_name == "Amina Otieno"
    assert event.received_at == datetime(2026, 3, 4, 15, 0, 0, 123000, tzinfo=UTC)
    assert event.raw is not None and json.loads(event.raw) == load("text")


def test_an_attachment_keeps_its_id_type_and_size() -> None:
    [event] = envelope_events(load("attachment"), account=NUMBER)
    assert isinstance(event, InboundMessage)
    assert event.body == ""
    assert event.attachments == (
        Attachment(
            content_type="image/jpeg",
            media_id="wTqNWWNX0lAhz1pAgzXk.jpg",
            filename="flyer.jpg",
            size=48213,
        ),
    )


def test_a_hidden_number_is_known_by_its_uuid() -> None:
    [event] = envelope_events(load("hidden_number"), account=NUMBER)
    assert isinstance(event, InboundMessage)
    assert event.address == "0c9e7a44-1d2b-4f38-a6de-5b0f8e3c2a91"
    assert event.body == "STOP"


@pytest.mark.parametrize(
    ("fixture", "status", "ids"),
    [
        ("receipt_delivery", "delivered", ["1772636580001"]),
        ("receipt_read", "read", ["1772636580001", "1772636580002"]),
    ],
)
def test_receipts_move_our_sent_messages(fixture: str, status: str, ids: list[str]) -> None:
    events = envelope_events(load(fixture), account=NUMBER)
    assert all(isinstance(e, StatusUpdate) for e in events)
    assert [(e.channel, e.provider_message_id, e.status) for e in events] == [
        ("signal", i, status) for i in ids
    ]


@pytest.mark.parametrize("fixture", ["typing", "group"])
def test_typing_and_group_traffic_are_skipped(fixture: str) -> None:
    assert envelope_events(load(fixture), account=NUMBER) == []


def test_another_accounts_envelope_is_skipped() -> None:
    assert envelope_events(load("text"), account="+14155550199") == []


def test_the_apis_error_frame_is_no_event() -> None:
    assert parse_frame('{"error": "signal-cli stopped"}', account=NUMBER) == []


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b'"a string"',
        b'{"account": "+14155550123"}',
        b'{"envelope": {"sourceUuid": "x", "dataMessage": {"message": "hi"}}}',
    ],
)
def test_a_frame_we_cannot_read_is_malformed(payload: bytes) -> None:
    with pytest.raises(MalformedPayload):
        parse_frame(payload, account=NUMBER)


def test_a_poll_answer_is_an_array_and_one_bad_envelope_spares_the_rest() -> None:
    body = json.dumps([load("text"), {"envelope": 5}, load("receipt_delivery")]).encode()
    events = parse_receive_body(body, account=NUMBER)
    assert [type(e).__name__ for e in events] == ["InboundMessage", "StatusUpdate"]
    assert parse_receive_body(b"[]", account=NUMBER) == []
    assert parse_receive_body(b"", account=NUMBER) == []
    with pytest.raises(MalformedPayload):
        parse_receive_body(b"<html>", account=NUMBER)


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("+254712345678", "+254712345678"),
        ("Amina.42", "amina.42"),
        ("6E4A0B52-8C1F-4A5E-9F1D-2B7C3E9A1D44", UUID),
        ("0712345678", None),
        ("amina", None),
    ],
)
def test_canonical_addresses(raw: str, canonical: str | None) -> None:
    assert canonical_address(raw) == canonical
