"""Plain-text (non-RFC 3464) bounces read as reports, and mail that only mentions a
failed delivery still read as someone writing."""

from __future__ import annotations

from pathlib import Path

import pytest

from channels.base import InboundMessage, InvalidRecipient, StatusUpdate
from channels.email.parse import UnusableSender, parse_events

TESTDATA = Path(__file__).parents[2] / "channels" / "email" / "testdata"
OUR_ID = "<rp.1.5f3c2a9e7b10@rally.example.org>"


@pytest.mark.parametrize(
    ("filename", "reason"),
    [
        ("bounce_qmail.eml", "Sorry, no mailbox here by that name. (#5.1.1)"),
        ("bounce_exim_plain.eml", "SMTP error from remote mail server after RCPT TO:"),
        ("bounce_postfix_plain.eml", "host mx2.example.net[192.0.2.7] said: 550 5.1.1"),
    ],
)
@pytest.mark.parametrize("envelope", ["", "mailer-daemon@example.net", None])
def test_plain_bounces_name_the_recipient_and_our_message(
    filename: str, reason: str, envelope: str | None
) -> None:
    [update] = parse_events((TESTDATA / filename).read_bytes(), envelope_from=envelope)
    assert isinstance(update, StatusUpdate)
    assert (update.provider_message_id, update.status) == (OUR_ID, "undelivered")
    assert update.recipients == ("dana.dual@example.net",)
    assert update.error_code == "5.1.1" and isinstance(update.failure, InvalidRecipient)
    assert update.error_message is not None
    assert update.error_message.startswith(f"bounced: 5.1.1 {reason}")


def test_a_delay_notice_is_no_failure() -> None:
    raw = (TESTDATA / "bounce_plain_delayed.eml").read_bytes()
    assert parse_events(raw, envelope_from="") == []
    assert parse_events(raw, envelope_from=None) == []


def test_a_bounce_without_our_message_id_changes_nothing() -> None:
    raw = (TESTDATA / "bounce_qmail.eml").read_bytes().replace(b"Message-ID:", b"X-Gone:")
    assert parse_events(raw, envelope_from="") == []


def test_a_supporter_writing_about_a_failed_delivery_is_a_message() -> None:
    raw = (
        b"From: Ana <ana@example.net>\r\nTo: team@rally.example.org\r\nSubject: Re: Saturday\r\n"
        b"Message-ID: <a1@example.net>\r\n\r\nMy mail to Bo could not be delivered to one or "
        b"more recipients, can you forward it?\r\n"
    )
    [message] = parse_events(raw, envelope_from="ana@example.net")
    assert isinstance(message, InboundMessage) and message.address == "ana@example.net"


def test_null_sender_mail_is_ignored_or_refused_never_a_message() -> None:
    with_from = b"From: a@example.net\r\nSubject: hi\r\n\r\nSTOP\r\n"
    assert parse_events(with_from, envelope_from="") == []
    assert parse_events(with_from, envelope_from="<>") == []
    with pytest.raises(UnusableSender):
        parse_events(b"From: nobody\r\nSubject: hi\r\n\r\nhello\r\n", envelope_from="")
