"""Inbound mail parsing, table-driven from channels/email/testdata/*.eml (no I/O)."""

from __future__ import annotations

from pathlib import Path

import pytest

from channels.email.parse import MAX_RAW_CHARS, UnusableSender, parse_email
from channels.email.reply import strip_reply

TESTDATA = Path(__file__).parents[2] / "channels" / "email" / "testdata"

# (file, sender, profile name, body, subject, in_reply_to)
CASES = [
    (
        "plain.eml",
        "amina.otieno@example.com",
        "Amina Otieno",
        "Hi team,\n\nI can canvass on Saturday morning in Kibera.\n\nAmina",
        "Canvassing on Saturday",
        None,
    ),
    (
        "html_only.eml",
        "jonas@example.de",
        "Jonas Weber",
        "I'll call 20 people on Thursday.\nSee you there!",
        "Re: Phone bank",
        "<rp-out-77@rally.example.org>",
    ),
    (
        "latin1_qp.eml",
        "joao.araujo@example.com.br",
        "João Araújo",
        "Olá, já estou disponível às 18h no sábado.",
        "Disponibilidade sábado",
        None,
    ),
    (
        "attachment.eml",
        "priya@example.in",
        "Priya Nair",
        "Here is the flyer draft for the rally.",
        "Flyer draft",
        None,
    ),
    (
        "outlook_reply.eml",
        "chidi.okafor@example.ng",
        "Okafor, Chidi",
        "I\u2019m doing well, thanks. I knocked on 40 doors this week.\n\nBest regards,\nChidi",
        "RE: Weekly check-in",
        "<rp-out-81@rally.example.org>",
    ),
    (
        "gmail_reply.eml",
        "sofia.rossi@gmail.example",
        "Sofia Rossi",
        "Yes, I can host it at my place on Friday \U0001f60a",
        "Re: Can you host a meeting?",
        "<rp-out-90@rally.example.org>",
    ),
    (
        "original_message.eml",
        "li.wei@example.cn",
        "Li Wei",
        "Count me in for the training.",
        "RE: Training",
        None,
    ),
]


@pytest.mark.parametrize(
    ("filename", "sender", "name", "body", "subject", "in_reply_to"),
    CASES,
    ids=[c[0] for c in CASES],
)
def test_parse_testdata(
    filename: str, sender: str, name: str, body: str, subject: str, in_reply_to: str | None
) -> None:
    raw = (TESTDATA / filename).read_bytes()
    message = parse_email(raw)
    assert message is not None
    assert message.channel == "email"
    assert message.address == sender
    assert message.profile_name == name
    assert message.body == body
    assert message.subject == subject
    assert message.in_reply_to == in_reply_to
    assert message.email_message_id == message.provider_message_id
    assert message.provider_message_id.startswith("<")
    assert message.raw is not None and "Message-ID:" in message.raw


def test_crlf_and_lf_parse_the_same() -> None:
    raw = (TESTDATA / "outlook_reply.eml").read_bytes()
    crlf = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    a, b = parse_email(raw), parse_email(crlf)
    assert a is not None and b is not None
    assert a.body == b.body
    assert "\r" not in b.body and b.raw is not None and "\r" not in b.raw


def test_attachment_is_described_not_kept() -> None:
    message = parse_email((TESTDATA / "attachment.eml").read_bytes())
    assert message is not None
    assert [a.as_dict() for a in message.attachments] == [
        {"content_type": "application/pdf", "filename": "flyer.pdf", "size": 52}
    ]


def test_references_kept_for_threading() -> None:
    message = parse_email((TESTDATA / "outlook_reply.eml").read_bytes())
    assert message is not None
    assert message.references == "<rp-out-80@rally.example.org> <rp-out-81@rally.example.org>"


@pytest.mark.parametrize(
    "header",
    [
        "Auto-Submitted: auto-replied",
        "Auto-Submitted: auto-generated",
        "Precedence: bulk",
        "Precedence: auto_reply",
        "X-Autoreply: yes",
    ],
)
def test_auto_replies_are_ignored(header: str) -> None:
    raw = (
        f"From: a@example.org\nTo: team@rally.example.org\n{header}\n"
        "Message-ID: <x@example.org>\n\nOut of office\n"
    ).encode()
    assert parse_email(raw) is None


def test_auto_submitted_no_is_a_person() -> None:
    raw = b"From: a@example.org\nAuto-Submitted: no\nMessage-ID: <y@example.org>\n\nSTOP\n"
    message = parse_email(raw)
    assert message is not None and message.body == "STOP"


def test_missing_message_id_hashes_the_bytes() -> None:
    raw = b"From: Someone <Someone@Example.org>\nSubject: hi\n\nhello\n"
    first, again = parse_email(raw), parse_email(raw)
    other = parse_email(raw + b"more\n")
    assert first is not None and again is not None and other is not None
    assert first.provider_message_id.startswith("sha256:")
    assert first.provider_message_id == again.provider_message_id
    assert other.provider_message_id != first.provider_message_id
    assert first.email_message_id is None


def test_sender_falls_back_to_envelope() -> None:
    message = parse_email(b"Subject: hi\n\nhello\n", envelope_from="Bounce@Example.ORG")
    assert message is not None and message.address == "bounce@example.org"


def test_no_sender_at_all_is_unusable() -> None:
    with pytest.raises(UnusableSender):
        parse_email(b"From: undisclosed\nSubject: hi\n\nhello\n", envelope_from="")


def test_raw_is_bounded() -> None:
    raw = b"From: a@example.org\nMessage-ID: <big@example.org>\n\n" + b"x" * (MAX_RAW_CHARS * 2)
    message = parse_email(raw)
    assert message is not None and message.raw is not None
    assert len(message.raw) == MAX_RAW_CHARS


def test_unknown_charset_is_read_not_raised() -> None:
    raw = (
        b"From: a@example.org\nMessage-ID: <cs@example.org>\n"
        b"Content-Type: text/plain; charset=x-no-such-charset\n\nhello\n"
    )
    message = parse_email(raw)
    assert message is not None and message.body == "hello"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Yes!\n\nOn Mon, Mar 2, 2026 at 9:00 AM Team <t@x.org> wrote:\n> hi\n", "Yes!"),
        ("Sure\n\n> quoted line\n> another\n", "Sure"),
        ("OK\n\n--\nJane Doe\nVolunteer lead\n", "OK"),
        ("See you\n\nSent from my Galaxy\n", "See you"),
        ("Fine\n\nFrom: Team <t@x.org>\nSent: Monday\nTo: Jane\nSubject: hi\n\nold", "Fine"),
        ("Noted\n-----Original Message-----\nFrom: Team\nold text\n", "Noted"),
        ("STOP\r\n\r\nGet Outlook for iOS\r\n", "STOP"),
        # Nothing would remain: keep the whole text rather than store an empty body.
        ("-----Original Message-----\nFrom: Team\nforwarded", "-----Original Message-----"),
    ],
)
def test_strip_reply(text: str, expected: str) -> None:
    assert strip_reply(text).startswith(expected)
    if expected != "-----Original Message-----":
        assert strip_reply(text) == expected
