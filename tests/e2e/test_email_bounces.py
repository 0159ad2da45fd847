"""Email bounces end to end: an announcement or one-on-one goes out over real SMTP (the
fake accepts it), the remote server's bounce (a delivery status notification) comes back
to the inbound SMTP listener, and the message falls back to the supporter's next channel.
Reports that are not final, or name another recipient, change nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func
from sqlmodel import select

from channels.email.fake import FakeSmtpServer
from channels.email.listener import SmtpListener
from storage.models import Message, PendingStatus, Supporter
from tests.conftest import FakeClock
from tests.e2e.harness import MakeClient, Org
from tests.e2e.mail import deliver, start_mail_org

TESTDATA = Path(__file__).parents[2] / "channels" / "email" / "testdata"
PHONE = "+14155550177"
TG_CHAT = 5550188
# The Message-IDs in the testdata's returned headers, replaced by the one we really sent.
TESTDATA_IDS = (b"<rp.1.5f3c2a9e7b10@rally.example.org>", b"<rp.2.0d4e6f8a1b2c@rally.example.org>")


class EmailOrg:
    """The e2e org with outbound SMTP to a fake and the inbound listener running."""

    def __init__(self, org: Org, smtp: FakeSmtpServer, listener: SmtpListener, port: int) -> None:
        self.org = org
        self.smtp = smtp
        self.listener = listener
        self.port = port

    async def report(self, filename: str, sent: str) -> str:
        """Deliver a bounce from testdata, about the mail whose Message-ID is `sent`, the
        way an MTA sends one (null envelope sender); the listener's answer."""
        raw = (TESTDATA / filename).read_bytes()
        for placeholder in TESTDATA_IDS:
            raw = raw.replace(placeholder, sent.encode())
        return await deliver(self.port, raw, "")

    async def count(self, model: type) -> int:
        async with self.org.ctx.sessions() as session:
            return (await session.exec(select(func.count()).select_from(model))).one()

    async def detail(self, message_id: int) -> dict[str, Any]:
        found: dict[str, Any] = await self.org.api("GET", f"/messages/{message_id}")
        return found


@pytest.fixture
async def email_org(make_client: MakeClient, clock: FakeClock) -> AsyncIterator[EmailOrg]:
    with FakeSmtpServer() as smtp:
        org, listener, port = await start_mail_org(make_client, clock, smtp)
        await listener.start()
        try:
            yield EmailOrg(org, smtp, listener, port)
        finally:
            await listener.stop()


async def dana_by_email_then_sms(org: Org) -> dict[str, Any]:
    await org.team("Canvassing")
    return await org.supporter(
        name="Dana Dual",
        addresses=[
            {"channel": "email", "address": "dana.dual@example.net"},
            {"channel": "sms", "address": PHONE},
        ],
        preferred_channels=["email", "sms"],
        teams=["Canvassing"],
    )


async def announced_by_email(box: EmailOrg) -> tuple[dict[str, Any], str]:
    """Announce to Dana; the mail is accepted. The message and its Message-ID."""
    org = box.org
    dana = await dana_by_email_then_sms(org)
    created = await org.announce("Canvass Saturday 10am", {"teams": ["Canvassing"]})
    await org.dispatch()
    [mail] = box.smtp.messages
    assert mail.rcpt_tos == ("dana.dual@example.net",)
    [convo] = (await org.api("GET", "/conversations", params={"supporter_id": dana["id"]}))["items"]
    [message] = (await org.api("GET", f"/conversations/{convo['id']}/messages"))["items"]
    assert (message["channel"], message["status"]) == ("email", "sent")
    assert message["provider_message_id"] == mail.message["Message-ID"]
    return {**message, "announcement_id": created["id"]}, str(mail.message["Message-ID"])


async def test_announcement_bounce_falls_back_to_sms(email_org: EmailOrg) -> None:
    org = email_org.org
    message, sent_id = await announced_by_email(email_org)

    answer = await email_org.report("bounce_postfix_user_unknown.eml", sent_id)
    assert answer.startswith("250 ")
    await org.dispatch()

    assert org.providers.sms_to(PHONE) == ["Canvass Saturday 10am"]
    detail = await email_org.detail(message["id"])
    assert (detail["channel"], detail["status"]) == ("sms", "sent")
    assert [(a["channel"], a["status"]) for a in detail["attempts"]] == [
        ("email", "undelivered"),
        ("sms", "sent"),
    ]
    bounced = "bounced: 5.1.1 <dana.dual@example.net>: Recipient address rejected"
    assert detail["attempts"][0]["error"].startswith(bounced)
    assert bounced in detail["error"]
    report = await org.api("GET", f"/announcements/{message['announcement_id']}")
    assert report["by_channel"] == {"sms": {"sent": 1}}
    # A bounce is a report, not someone writing to us.
    assert await email_org.count(Supporter) == 1
    assert await email_org.count(Message) == 1

    # The MTA sends the same bounce again: nothing more happens.
    answer = await email_org.report("bounce_postfix_user_unknown.eml", sent_id)
    assert answer.startswith("250 ")
    await org.dispatch()
    assert org.providers.sms_to(PHONE) == ["Canvass Saturday 10am"]
    assert len(email_org.smtp.messages) == 1


async def test_one_on_one_bounce_with_the_whole_message_returned_falls_back(
    email_org: EmailOrg,
) -> None:
    org = email_org.org
    kofi = await org.supporter(
        name="Kofi Mensah",
        addresses=[
            {"channel": "email", "address": "Kofi.Mensah@Example.com"},
            {"channel": "telegram", "address": str(TG_CHAT)},
        ],
        preferred_channels=["email", "telegram"],
    )
    sent = await org.api(
        "POST", f"/supporters/{kofi['id']}/messages", 202, json={"body": "Phone bank Thursday"}
    )
    await org.dispatch()
    [mail] = email_org.smtp.messages
    assert org.providers.telegram_to(TG_CHAT) == []

    answer = await email_org.report("bounce_exim_rfc822.eml", str(mail.message["Message-ID"]))
    assert answer.startswith("250 ")
    await org.dispatch()

    assert org.providers.telegram_to(TG_CHAT) == ["Phone bank Thursday"]
    detail = await email_org.detail(sent["id"])
    assert (detail["channel"], detail["status"]) == ("telegram", "sent")
    assert [(a["channel"], a["status"]) for a in detail["attempts"]] == [
        ("email", "undelivered"),
        ("telegram", "sent"),
    ]
    assert detail["attempts"][0]["error"].startswith(
        "bounced: 5.2.1 The email account that you tried to reach is disabled."
    )
    assert await email_org.count(Supporter) == 1


@pytest.mark.parametrize(
    ("filename", "about_ours"),
    [
        ("bounce_postfix_delayed.eml", True),  # 4.4.1, still being retried
        ("bounce_other_recipient.eml", True),  # our Message-ID, another address
        ("bounce_postfix_user_unknown.eml", False),  # a Message-ID we never sent
    ],
    ids=["delayed", "other-recipient", "unknown-message"],
)
async def test_reports_that_do_not_apply_change_nothing(
    email_org: EmailOrg, filename: str, about_ours: bool
) -> None:
    org = email_org.org
    message, sent_id = await announced_by_email(email_org)

    about = sent_id if about_ours else "<rp.99.0123456789ab@rally.example.org>"
    answer = await email_org.report(filename, about)
    assert answer.startswith("250 ")  # accepted, so the MTA does not retry it
    await org.dispatch()

    detail = await email_org.detail(message["id"])
    assert (detail["channel"], detail["status"], detail["error"]) == ("email", "sent", None)
    assert [(a["channel"], a["status"]) for a in detail["attempts"]] == [("email", "sent")]
    assert org.providers.sms_to(PHONE) == []
    assert await email_org.count(Supporter) == 1
    assert await email_org.count(Message) == 1
    assert await email_org.count(PendingStatus) == 0

    # The real bounce for the same mail still applies.
    await email_org.report("bounce_postfix_user_unknown.eml", sent_id)
    await org.dispatch()
    assert org.providers.sms_to(PHONE) == ["Canvass Saturday 10am"]


@pytest.mark.parametrize(
    "filename", ["bounce_qmail.eml", "bounce_exim_plain.eml", "bounce_postfix_plain.eml"]
)
@pytest.mark.parametrize("envelope", ["", "MAILER-DAEMON@mx.example.net"], ids=["null", "daemon"])
async def test_plain_text_bounces_fall_back_too(
    email_org: EmailOrg, filename: str, envelope: str
) -> None:
    org = email_org.org
    message, sent_id = await announced_by_email(email_org)
    raw = (TESTDATA / filename).read_bytes().replace(TESTDATA_IDS[0], sent_id.encode())
    answer = await deliver(email_org.port, raw, envelope)
    assert answer.startswith("250 "), answer
    await org.dispatch()

    assert org.providers.sms_to(PHONE) == ["Canvass Saturday 10am"]
    detail = await email_org.detail(message["id"])
    assert [(a["channel"], a["status"]) for a in detail["attempts"]] == [
        ("email", "undelivered"),
        ("sms", "sent"),
    ]
    assert detail["attempts"][0]["error"].startswith("bounced: 5.1.1 ")
    # Neither the notice nor its sender became a message or a supporter.
    assert await email_org.count(Supporter) == 1
    assert await email_org.count(Message) == 1


async def test_a_plain_delay_notice_changes_nothing(email_org: EmailOrg) -> None:
    org = email_org.org
    message, sent_id = await announced_by_email(email_org)
    raw = (TESTDATA / "bounce_plain_delayed.eml").read_bytes()
    answer = await deliver(email_org.port, raw.replace(TESTDATA_IDS[0], sent_id.encode()), "")
    assert answer.startswith("250 ")
    await org.dispatch()
    detail = await email_org.detail(message["id"])
    assert (detail["channel"], detail["status"]) == ("email", "sent")
    assert org.providers.sms_to(PHONE) == []
    assert await email_org.count(Supporter) == 1
    assert await email_org.count(Message) == 1


async def test_mail_from_the_null_sender_is_never_a_message(email_org: EmailOrg) -> None:
    """MAIL FROM:<> is for notifications: whatever it says, it is neither stored nor
    acted on (not even a STOP), and its From header does not become a supporter."""
    raw = (
        b"From: Someone <someone@example.net>\r\nTo: team@rally.example.org\r\n"
        b"Subject: Delivery report\r\nMessage-ID: <n1@example.net>\r\n\r\nSTOP\r\n"
    )
    answer = await deliver(email_org.port, raw, "")
    assert answer.startswith("250 ")
    assert await email_org.count(Supporter) == 0
    assert await email_org.count(Message) == 0
    # The same mail from a real envelope sender is someone writing.
    again = raw.replace(b"<n1@", b"<n2@").replace(b"STOP", b"hello")
    answer = await deliver(email_org.port, again, "someone@example.net")
    assert answer.startswith("250 ")
    assert await email_org.count(Supporter) == 1
    assert await email_org.count(Message) == 1
