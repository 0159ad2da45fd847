"""Event invitations by email over real SMTP (aiosmtpd): the mail carries the calendar
file as text/calendar; method=REQUEST, a reply by mail is an RSVP, a cancellation carries
METHOD:CANCEL; and quiet hours hold invitations until the supporter's morning."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import pytest

from channels.email.fake import FakeSmtpServer
from channels.email.listener import SmtpListener
from tests.conftest import FakeClock
from tests.e2e.harness import MakeClient, Org
from tests.e2e.mail import OURS, deliver, start_mail_org

DANA = "dana@example.net"


@pytest.fixture
async def mail_org(
    make_client: MakeClient, clock: FakeClock
) -> AsyncIterator[tuple[Org, FakeSmtpServer, SmtpListener, int]]:
    with FakeSmtpServer() as smtp:
        org, listener, port = await start_mail_org(make_client, clock, smtp)
        await listener.start()
        try:
            yield org, smtp, listener, port
        finally:
            await listener.stop()


def calendar_part(mail: EmailMessage) -> Any:
    [part] = [p for p in mail.walk() if p.get_content_type() == "text/calendar"]
    return part


async def test_email_invitation_carries_the_ics_and_a_reply_is_an_rsvp(
    mail_org: tuple[Org, FakeSmtpServer, SmtpListener, int],
) -> None:
    org, smtp, _, port = mail_org
    await org.team("North")
    await org.supporter(
        name="Dana",
        addresses=[{"channel": "email", "address": DANA}],
        teams=["North"],
        timezone="Africa/Nairobi",
    )
    event = await org.api(
        "POST",
        "/events",
        201,
        json={
            "title": "Intake call",
            "kind": "intake",
            "starts_at": "2026-03-10T18:00:00+03:00",
            "duration_minutes": 45,
            "location_url": "Dial +1 555 0100, PIN 1234#",
            "audience": {"teams": ["North"]},
        },
    )
    await org.dispatch()
    [mail] = smtp.messages
    message = mail.message
    assert message["Subject"] == "Intake call"
    body = message.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert "Tue 10 Mar 2026, 18:00 EAT" in text and "Dial +1 555 0100, PIN 1234#" in text
    assert "1) Yes 2) No 3) Maybe" in text
    part = calendar_part(message)
    assert part.get_param("method") == "REQUEST"
    assert part.get_filename() == "invite.ics"
    ics = part.get_content()
    assert "METHOD:REQUEST" in ics and "DTSTART:20260310T150000Z" in ics
    assert "DTEND:20260310T154500Z" in ics
    assert "LOCATION:Dial +1 555 0100\\, PIN 1234#" in ics and "URL:" not in ics
    assert f"UID:rallypoint-event-{event['id']}@rally.example.org" in ics
    assert "ORGANIZER:mailto:team@rally.example.org" in ics

    reply = EmailMessage()
    reply["From"] = DANA
    reply["To"] = OURS
    reply["Subject"] = "Re: Intake call"
    reply["Message-ID"] = "<reply-1@example.net>"
    reply.set_content("1\n")
    assert (await deliver(port, reply.as_bytes(), DANA)).startswith("250")
    await org.dispatch()
    confirmation = smtp.messages[-1].message.get_body(("plain",))
    assert confirmation is not None
    assert confirmation.get_content().strip() == "Thanks, you're in for Intake call."
    counts = (await org.api("GET", f"/events/{event['id']}"))["counts"]
    assert counts["yes"] == 1

    await org.api("POST", f"/events/{event['id']}/cancel")
    await org.dispatch()
    cancel = calendar_part(smtp.messages[-1].message)
    assert cancel.get_param("method") == "CANCEL"
    assert "STATUS:CANCELLED" in cancel.get_content()


async def test_quiet_hours_hold_invitations(make_client: MakeClient, clock: FakeClock) -> None:
    clock.set(datetime(2026, 3, 4, 23, 30, tzinfo=UTC))  # night in UTC
    org = await Org.start(make_client, clock)
    await org.team("North")
    phone = "+14155550111"
    await org.supporter(
        name="Sam", addresses=[{"channel": "sms", "address": phone}], teams=["North"]
    )
    await org.api(
        "POST",
        "/events",
        201,
        json={
            "title": "Weekly call",
            "starts_at": "2026-03-10T18:00:00Z",
            "audience": {"teams": ["North"]},
        },
    )
    await org.dispatch()
    assert org.providers.sms_to(phone) == []
    clock.set(datetime(2026, 3, 5, 8, 1, tzinfo=UTC))
    await org.dispatch()
    [sms] = org.providers.sms_to(phone)
    assert sms.startswith("Weekly call\nTue 10 Mar 2026, 18:00 UTC")
