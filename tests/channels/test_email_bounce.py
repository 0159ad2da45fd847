"""Bounces (RFC 3464 delivery status notifications) into StatusUpdate values, table-driven
from channels/email/testdata/bounce_*.eml (no I/O)."""

from __future__ import annotations

from pathlib import Path

import pytest

from channels.base import InvalidRecipient, SendError
from channels.email.bounce import MAX_DIAGNOSTIC
from channels.email.parse import parse_email, parse_events

TESTDATA = Path(__file__).parents[2] / "channels" / "email" / "testdata"
POSTFIX = "bounce_postfix_user_unknown.eml"


def eml(name: str) -> bytes:
    return (TESTDATA / name).read_bytes()


# (file, original Message-ID, status, error, recipients, failure class)
FAILURES = [
    (
        POSTFIX,
        "<rp.1.5f3c2a9e7b10@rally.example.org>",
        "5.1.1",
        "bounced: 5.1.1 <dana.dual@example.net>: Recipient address rejected: "
        "User unknown in virtual mailbox table",
        ("dana.dual@example.net",),
        InvalidRecipient,
    ),
    (
        "bounce_exim_rfc822.eml",
        "<rp.2.0d4e6f8a1b2c@rally.example.org>",
        "5.2.1",
        "bounced: 5.2.1 The email account that you tried to reach is disabled. Learn more at "
        "https://support.example.com/mail/?p=DisabledUser",
        ("kofi.mensah@example.com",),
        SendError,
    ),
    (
        "bounce_other_recipient.eml",
        "<rp.1.5f3c2a9e7b10@rally.example.org>",
        "5.1.1",
        "bounced: 5.1.1 <someone.else@example.org>: Recipient address rejected",
        ("someone.else@example.org",),
        InvalidRecipient,
    ),
]


@pytest.mark.parametrize(
    ("filename", "message_id", "status", "error", "recipients", "failure"),
    FAILURES,
    ids=[c[0] for c in FAILURES],
)
def test_permanent_failure_becomes_undelivered(
    filename: str,
    message_id: str,
    status: str,
    error: str,
    recipients: tuple[str, ...],
    failure: type[SendError],
) -> None:
    [update] = parse_events(eml(filename))
    assert update.channel == "email"
    assert update.provider_message_id == message_id
    assert (update.status, update.error_code) == ("undelivered", status)
    assert update.error_message is not None and update.error_message.startswith(error)
    assert update.recipients == recipients
    assert type(update.failure) is failure
    assert update.failure.fallback and not update.failure.retryable
    assert str(update.failure) == update.error_message and update.failure.code == status


def test_delayed_is_not_final() -> None:
    assert parse_events(eml("bounce_postfix_delayed.eml")) == []


@pytest.mark.parametrize(
    ("action", "status"),
    [
        ("delivered", "2.0.0"),
        ("relayed", "2.0.0"),
        ("expanded", "2.0.0"),
        ("delayed", "4.4.1"),
        ("failed", "2.0.0"),
        ("failed", "garbage"),
    ],
)
def test_only_failed_with_4xx_or_5xx_changes_anything(action: str, status: str) -> None:
    raw = eml(POSTFIX).replace(b"Action: failed", f"Action: {action}".encode())
    raw = raw.replace(b"Status: 5.1.1", f"Status: {status}".encode())
    assert parse_events(raw) == []


def test_without_returned_headers_it_is_dropped() -> None:
    raw = eml(POSTFIX).replace(b"Message-ID: <rp.1.5f3c2a9e7b10@rally.example.org>\n", b"")
    assert parse_events(raw) == []


def test_recipient_that_is_not_an_email_address_is_dropped() -> None:
    raw = eml(POSTFIX)
    raw = raw.replace(b"Final-Recipient: rfc822; ", b"Final-Recipient: x400; ")
    raw = raw.replace(b"Original-Recipient: rfc822;dana.dual@example.net\n", b"")
    assert parse_events(raw) == []


def test_original_recipient_is_named_too() -> None:
    raw = eml(POSTFIX).replace(
        b"Original-Recipient: rfc822;dana.dual@example.net",
        b"Original-Recipient: rfc822;Dana@Old-Domain.example",
    )
    [update] = parse_events(raw)
    assert update.recipients == ("dana.dual@example.net", "dana@old-domain.example")


def test_long_diagnostic_is_truncated() -> None:
    raw = eml(POSTFIX).replace(
        b"    rejected: User unknown in virtual mailbox table",
        b"    rejected: " + b"very long explanation " * 40,
    )
    [update] = parse_events(raw)
    assert update.error_message is not None
    assert len(update.error_message) <= len("bounced: 5.1.1 ") + MAX_DIAGNOSTIC
    assert update.error_message.endswith("…")


def test_two_recipients_in_one_report_give_one_update_each() -> None:
    raw = eml(POSTFIX)
    start = raw.index(b"Final-Recipient:")
    block = raw[start : raw.index(b"\n--4Tq8Zk1Vbqz9sWQ", start)]
    other = block.replace(b"dana.dual@example.net", b"sam@example.net")
    raw = raw.replace(block, block + b"\n" + other)
    updates = parse_events(raw)
    assert [u.recipients for u in updates] == [("dana.dual@example.net",), ("sam@example.net",)]


def test_a_bounce_is_never_a_supporters_message() -> None:
    assert parse_email(eml(POSTFIX)) is None


@pytest.mark.parametrize(
    "raw",
    [
        # Out-of-office: dropped as before.
        eml("auto_reply.eml"),
        # A read receipt is a report too, but not a delivery status one.
        b"From: a@example.org\nMessage-ID: <mdn@example.org>\nMIME-Version: 1.0\n"
        b'Content-Type: multipart/report; report-type=disposition-notification; boundary="b"\n'
        b"\n--b\nContent-Type: text/plain\n\nRead.\n--b--\n",
    ],
    ids=["out-of-office", "read-receipt"],
)
def test_other_machine_mail_is_still_ignored(raw: bytes) -> None:
    assert parse_events(raw) == []


def test_failed_after_giving_up_on_a_temporary_failure_is_final() -> None:
    """4.4.7 with `Action: failed`: the sending server stopped retrying (RFC 3464 2.3.3)."""
    raw = eml(POSTFIX).replace(b"Status: 5.1.1", b"Status: 4.4.7")
    (update,) = parse_events(raw)
    assert (update.status, update.error_code) == ("undelivered", "4.4.7")
    assert type(update.failure) is SendError and update.failure.fallback
