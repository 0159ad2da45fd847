"""Forged email end to end: mail comes in over real SMTP to the inbound listener, which checks
its sender (RALLYPOINT_INBOUND_SMTP_SENDER_AUTH); what it did shows in the REST API and in
what the dispatcher sends over real SMTP (a fake server). Signatures are made by dkimpy
with a key made in the test, served by a fake DNS (tests/channels/dkim_case.py)."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from channels.email.fake import FakeSmtpServer
from channels.email.listener import SmtpListener
from tests.channels.dkim_case import Signer, mail, new_signer
from tests.conftest import FakeClock
from tests.e2e.harness import MakeClient, Org
from tests.e2e.mail import deliver, start_mail_org

DANA = "dana@example.net"


class MailOrg:
    """The e2e org with outbound SMTP to a fake and the inbound listener running."""

    def __init__(self, org: Org, smtp: FakeSmtpServer, port: int, signer: Signer) -> None:
        self.org = org
        self.smtp = smtp
        self.port = port
        self.signer = signer
        self._ids = itertools.count(1)

    def mail(self, body: str, sender: str = DANA) -> bytes:
        return mail(sender, body, message_id=f"<e2e.{next(self._ids)}@example.net>")

    async def send(self, raw: bytes, sender: str = DANA) -> str:
        """Deliver `raw` as a sending server would; the listener's answer."""
        return await deliver(self.port, raw, sender)

    async def mails_to(self, address: str) -> list[str]:
        """What the dispatcher sends `address` now (the plain-text part of each mail)."""
        await self.org.dispatch()
        return [
            m.message.get_body(("plain",)).get_content().strip()  # type: ignore[union-attr]
            for m in self.smtp.messages
            if m.rcpt_tos == (address,)
        ]

    async def opted_out(self, supporter_id: int) -> bool:
        history = await self.org.api("GET", f"/supporters/{supporter_id}/consent")
        return bool(history["opted_out"])

    async def inbound(self, supporter_id: int) -> list[dict[str, Any]]:
        """The supporter's inbound messages as the API shows them, and the conversation."""
        convos = await self.org.api("GET", "/conversations", params={"supporter_id": supporter_id})
        [convo] = convos["items"]
        messages = await self.org.api("GET", f"/conversations/{convo['id']}/messages")
        return [m for m in messages["items"] if m["direction"] == "inbound"]


StartMailOrg = Callable[..., Awaitable[MailOrg]]


@pytest.fixture
async def start_org(make_client: MakeClient, clock: FakeClock) -> AsyncIterator[StartMailOrg]:
    listeners: list[SmtpListener] = []
    signer = new_signer()
    with FakeSmtpServer() as smtp:

        async def start(**settings: Any) -> MailOrg:
            org, listener, port = await start_mail_org(make_client, clock, smtp, **settings)
            assert listener.sender_auth is not None
            listener.sender_auth.dnsfunc = signer.lookup  # DNS answered by the test
            await listener.start()
            listeners.append(listener)
            return MailOrg(org, smtp, port, signer)

        try:
            yield start
        finally:
            for listener in listeners:
                await listener.stop()


async def test_a_forged_start_leaves_an_opted_out_supporter_opted_out(
    start_org: StartMailOrg,
) -> None:
    box = await start_org(inbound_smtp_sender_auth="dkim")
    box.signer.publish("example.net")
    box.signer.publish("attacker.example")
    dana = await box.org.supporter(name="Dana", addresses=[{"channel": "email", "address": DANA}])

    # Dana's own provider signs her mail: her STOP counts.
    assert (await box.send(box.signer.sign(box.mail("STOP"), "example.net"))).startswith("250")
    assert await box.opted_out(dana["id"])
    assert await box.mails_to(DANA) == [box.org.ctx.settings.opt_out_text]

    # Forged: no signature, then a valid signature of the forger's own domain.
    assert (await box.send(box.mail("START"))).startswith("250")
    forged = box.signer.sign(box.mail("START"), "attacker.example")
    assert (await box.send(forged)).startswith("250")
    assert await box.opted_out(dana["id"])
    assert await box.mails_to(DANA) == [box.org.ctx.settings.opt_out_text]  # nothing new
    inbound = await box.inbound(dana["id"])
    assert [(m["body"], m["sender_verified"]) for m in inbound] == [
        ("STOP", True),
        ("START", False),
        ("START", False),
    ]
    [convo] = (await box.org.api("GET", "/conversations", params={"unread": "true"}))["items"]
    assert convo["supporter_id"] == dana["id"]

    # Her own START, signed: back in.
    assert (await box.send(box.signer.sign(box.mail("START"), "example.net"))).startswith("250")
    assert not await box.opted_out(dana["id"])
    assert (await box.mails_to(DANA))[-1] == box.org.ctx.settings.opt_in_text
    assert (await box.inbound(dana["id"]))[-1]["sender_verified"] is True


async def test_a_forgery_sent_first_under_her_message_id_does_not_swallow_her_stop(
    start_org: StartMailOrg,
) -> None:
    """Ingestion drops a second mail with a known provider id as a retry: a forger who
    guesses Dana's next Message-ID and sends it first must not make her STOP that retry."""
    box = await start_org(inbound_smtp_sender_auth="dkim")
    box.signer.publish("example.net")
    dana = await box.org.supporter(name="Dana", addresses=[{"channel": "email", "address": DANA}])
    forged = mail(DANA, "Keep me posted!", message_id="<dana.7@example.net>")
    stop = box.signer.sign(mail(DANA, "STOP", message_id="<dana.7@example.net>"), "example.net")

    assert (await box.send(forged)).startswith("250")
    assert not await box.opted_out(dana["id"])
    assert (await box.send(stop)).startswith("250")
    assert await box.opted_out(dana["id"])
    assert await box.mails_to(DANA) == [box.org.ctx.settings.opt_out_text]

    # The sending servers retry (say our 250 was lost): each mail is still stored once.
    assert (await box.send(stop)).startswith("250")
    assert (await box.send(forged)).startswith("250")
    inbound = await box.inbound(dana["id"])
    assert [(m["body"], m["sender_verified"]) for m in inbound] == [
        ("Keep me posted!", False),
        ("STOP", True),
    ]
    assert inbound[0]["provider_message_id"].startswith("unverified:")
    assert inbound[1]["provider_message_id"] == "<dana.7@example.net>"
    assert await box.mails_to(DANA) == [box.org.ctx.settings.opt_out_text]  # no second reply


async def test_unverified_mail_from_a_stranger_is_kept_but_starts_nothing(
    start_org: StartMailOrg,
) -> None:
    box = await start_org(inbound_smtp_sender_auth="dkim")
    await box.org.team("Canvassing")
    stranger = "newcomer@example.org"
    for body in ("JOIN", "HELP"):
        assert (await box.send(box.mail(body, stranger), stranger)).startswith("250")

    [supporter] = (await box.org.api("GET", "/supporters"))["items"]
    inbound = await box.inbound(supporter["id"])
    assert [(m["body"], m["sender_verified"]) for m in inbound] == [
        ("JOIN", False),
        ("HELP", False),
    ]
    assert await box.mails_to(stranger) == []  # no onboarding question, no help text


async def test_a_dns_timeout_is_answered_451_and_the_retry_counts(
    start_org: StartMailOrg,
) -> None:
    box = await start_org(inbound_smtp_sender_auth="dkim")
    dana = await box.org.supporter(name="Dana", addresses=[{"channel": "email", "address": DANA}])
    stop = box.signer.sign(box.mail("STOP"), "example.net")
    box.signer.timeouts.add(b"s1._domainkey.example.net.")

    assert (await box.send(stop)).startswith("451 4.4.3")
    assert await box.opted_out(dana["id"]) is False

    box.signer.timeouts.clear()  # DNS answers again; the sending server retries
    box.signer.publish("example.net")
    assert (await box.send(stop)).startswith("250")
    assert await box.opted_out(dana["id"])
    assert [m["sender_verified"] for m in await box.inbound(dana["id"])] == [True]


async def test_our_mail_servers_authentication_results_decide(start_org: StartMailOrg) -> None:
    box = await start_org(inbound_smtp_sender_auth="authserv:mx.rally.example.org")
    dana = await box.org.supporter(name="Dana", addresses=[{"channel": "email", "address": DANA}])
    ours = b"Authentication-Results: mx.rally.example.org; dmarc=pass header.from=example.net\r\n"
    assert (await box.send(ours + box.mail("STOP"))).startswith("250")
    assert await box.opted_out(dana["id"])

    # The sender's own Authentication-Results (no server of ours wrote it) are ignored.
    forged = b"Authentication-Results: mx.example.net; dmarc=pass header.from=example.net\r\n"
    assert (await box.send(forged + box.mail("START"))).startswith("250")
    assert await box.opted_out(dana["id"])

    assert (await box.send(ours + box.mail("START"))).startswith("250")
    assert not await box.opted_out(dana["id"])
    verified = [m["sender_verified"] for m in await box.inbound(dana["id"])]
    assert verified == [True, False, True]


async def test_off_by_default_any_from_is_taken_at_its_word(start_org: StartMailOrg) -> None:
    box = await start_org()
    dana = await box.org.supporter(name="Dana", addresses=[{"channel": "email", "address": DANA}])
    assert (await box.send(box.mail("STOP"))).startswith("250")
    assert await box.opted_out(dana["id"])
    assert (await box.send(box.mail("START"))).startswith("250")
    assert not await box.opted_out(dana["id"])
    assert [m["sender_verified"] for m in await box.inbound(dana["id"])] == [None, None]


async def test_unverified_mail_is_no_sign_of_life(
    start_org: StartMailOrg, clock: FakeClock
) -> None:
    """A forged mail does not make a quiet supporter look active (inactivity list, nudges)
    nor move the thread and subject our replies use; it still waits unread for an organizer."""
    box = await start_org(inbound_smtp_sender_auth="dkim")
    box.signer.publish("example.net")
    await box.org.team("Canvassing")
    dana = await box.org.supporter(
        name="Dana", addresses=[{"channel": "email", "address": DANA}], teams=["Canvassing"]
    )
    hers = mail(DANA, "Count me in", message_id="<dana.1@example.net>", subject="Saturday")
    assert (await box.send(box.signer.sign(hers, "example.net"))).startswith("250")
    spoke = (await box.org.api("GET", f"/supporters/{dana['id']}"))["last_inbound_at"]
    assert spoke is not None
    await box.org.api("POST", f"/conversations/{await convo_id(box, dana['id'])}/read")

    clock.advance(days=20)
    forged = mail(DANA, "I quit", message_id="<forged.1@attacker.example>", subject="Goodbye")
    assert (await box.send(forged)).startswith("250")
    assert (await box.org.api("GET", f"/supporters/{dana['id']}"))["last_inbound_at"] == spoke
    due = await box.org.api("GET", "/checkins/due", params={"team": "Canvassing", "days": 14})
    assert [(s["supporter_id"], s["days_inactive"]) for s in due["items"]] == [(dana["id"], 20)]
    [convo] = (await box.org.api("GET", "/conversations", params={"unread": "true"}))["items"]
    assert convo["supporter_id"] == dana["id"]

    await box.org.api(
        "POST",
        f"/supporters/{dana['id']}/messages",
        202,
        json={"body": "Hi Dana", "channel": "email"},
    )
    assert await box.mails_to(DANA) == ["Hi Dana"]
    [reply] = [m.message for m in box.smtp.messages if m.rcpt_tos == (DANA,)]
    assert (reply["In-Reply-To"], reply["Subject"]) == ("<dana.1@example.net>", "Re: Saturday")

    # Her own mail, signed, counts again.
    again = mail(DANA, "Back!", message_id="<dana.2@example.net>", subject="Saturday")
    assert (await box.send(box.signer.sign(again, "example.net"))).startswith("250")
    assert (await box.org.api("GET", f"/supporters/{dana['id']}"))["last_inbound_at"] != spoke
    due = await box.org.api("GET", "/checkins/due", params={"team": "Canvassing", "days": 14})
    assert due["items"] == []


async def convo_id(box: MailOrg, supporter_id: int) -> int:
    convos = await box.org.api("GET", "/conversations", params={"supporter_id": supporter_id})
    return int(convos["items"][0]["id"])
