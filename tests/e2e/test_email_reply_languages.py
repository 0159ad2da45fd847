"""Replies written above the quote header of a French, Spanish, Portuguese, German,
Swahili or English mail client, delivered to the real inbound SMTP listener: a STOP
opts the supporter out and a poll answer counts, whatever the quoted text below says."""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator

import pytest

from channels.email.fake import FakeSmtpServer
from tests.conftest import FakeClock
from tests.e2e.harness import MakeClient, Org
from tests.e2e.mail import OURS, deliver, start_mail_org

QUOTED = (
    "> Can you canvass Saturday?\r\n> 1) Yes\r\n> 2) No\r\n> Reply with a number.\r\n"
    "> Reply STOP to stop messages, START to resume.\r\n"
)
# The quote header (or block) each client writes above the quoted mail.
HEADERS = {
    "gmail-en": f"On Mon, Dec 7, 2026 at 10:00 AM Rally Team <{OURS}> wrote:",
    "gmail-fr": f"Le lun. 7 déc. 2026 à 10:00, Rally Team <{OURS}> a écrit\u00a0:",
    "apple-fr": f"Le 7 déc. 2026 à 10:00, Rally Team <{OURS}> a écrit :",
    "gmail-es": f"El lun, 7 dic 2026 a las 10:00, Rally Team (<{OURS}>) escribió:",
    "gmail-pt": f"Em seg., 7 de dez. de 2026 às 10:00, Rally Team <{OURS}> escreveu:",
    "gmail-de": f"Am Mo., 7. Dez. 2026 um 10:00 Uhr schrieb Rally Team <{OURS}>:",
    "thunderbird-de": "Am 07.12.26 um 10:00 schrieb Rally Team:",
    "gmail-sw": f"Mnamo Jumatatu, 7 Des 2026 saa 10:00, Rally Team <{OURS}> aliandika:",
    "gmail-fr-wrapped": f"Le lun. 7 déc. 2026 à 10:00, Rally Team <{OURS}>\r\na écrit :",
    "outlook-en": (
        "-----Original Message-----\r\nFrom: Rally Team <team@rally.example.org>\r\n"
        "Sent: Monday, December 7, 2026 10:00 AM\r\nTo: You\r\nSubject: Saturday"
    ),
    "outlook-fr": (
        "De : Rally Team <team@rally.example.org>\r\nEnvoyé : lundi 7 décembre 2026 10:00\r\n"
        "À : Vous\r\nObjet : Samedi"
    ),
    "outlook-es": (
        "De: Rally Team <team@rally.example.org>\r\nEnviado: lunes, 7 de diciembre de 2026\r\n"
        "Para: Usted\r\nAsunto: Sábado"
    ),
    "outlook-pt": (
        "-----Mensagem original-----\r\nDe: Rally Team <team@rally.example.org>\r\n"
        "Enviado: segunda-feira, 7 de dezembro de 2026 10:00\r\nPara: Você\r\nAssunto: Sábado"
    ),
    "outlook-de": (
        "-----Ursprüngliche Nachricht-----\r\nVon: Rally Team <team@rally.example.org>\r\n"
        "Gesendet: Montag, 7. Dezember 2026 10:00\r\nAn: Sie\r\nBetreff: Samstag"
    ),
    "outlook-sw": (
        "Kutoka: Rally Team <team@rally.example.org>\r\nImetumwa: Jumatatu, 7 Desemba 2026\r\n"
        "Kwa: Wewe\r\nMada: Jumamosi"
    ),
    "iphone-pt": (
        f"Enviado do meu iPhone\r\n\r\nEm 7 de dez. de 2026, às 10:00, Rally <{OURS}> escreveu:"
    ),
}


def reply(sender: str, text: str, header: str) -> bytes:
    return (
        f"From: <{sender}>\r\nTo: {OURS}\r\nSubject: Re: Saturday\r\n"
        f"Message-ID: <{zlib.crc32((sender + header).encode())}@example.net>\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        f"{text}\r\n\r\n{header}\r\n{QUOTED}"
    ).encode()


class Mail:
    def __init__(self, org: Org, port: int) -> None:
        self.org, self.port = org, port


@pytest.fixture
async def mail(make_client: MakeClient, clock: FakeClock) -> AsyncIterator[Mail]:
    with FakeSmtpServer() as smtp:
        org, listener, port = await start_mail_org(make_client, clock, smtp)
        await listener.start()
        try:
            yield Mail(org, port)
        finally:
            await listener.stop()


async def email_supporter(org: Org, address: str) -> dict[str, object]:
    return await org.supporter(
        name=address.split("@")[0],
        addresses=[{"channel": "email", "address": address}],
        teams=["Canvassing"],
    )


@pytest.mark.parametrize("client", list(HEADERS))
async def test_stop_above_any_clients_quote_header_opts_out(mail: Mail, client: str) -> None:
    org = mail.org
    await org.team("Canvassing")
    ana = await email_supporter(org, "ana@example.net")
    answer = await deliver(
        mail.port, reply("ana@example.net", "STOP", HEADERS[client]), "ana@example.net"
    )
    assert answer.startswith("250 "), answer
    await org.dispatch()
    found = await org.api("GET", f"/supporters/{ana['id']}")
    assert found["opted_out"] is True, client
    [convo] = (await org.api("GET", "/conversations", params={"supporter_id": ana["id"]}))["items"]
    messages = (await org.api("GET", f"/conversations/{convo['id']}/messages"))["items"]
    assert [m["body"] for m in messages if m["direction"] == "inbound"] == ["STOP"]


async def test_poll_answers_above_quote_headers_count(mail: Mail) -> None:
    org = mail.org
    await org.team("Canvassing")
    clients = ["gmail-fr", "gmail-es", "gmail-pt", "gmail-de", "gmail-sw", "outlook-pt"]
    people = [f"p{i}@example.net" for i in range(len(clients))]
    for address in people:
        await email_supporter(org, address)
    poll = await org.api(
        "POST",
        "/polls",
        202,
        json={
            "question": "Can you canvass Saturday?",
            "options": ["Yes", "No"],
            "audience": {"teams": ["Canvassing"]},
        },
    )
    await org.dispatch()
    for i, (address, client) in enumerate(zip(people, clients, strict=True)):
        text = "2" if i % 2 else "1"
        answer = await deliver(mail.port, reply(address, text, HEADERS[client]), address)
        assert answer.startswith("250 "), answer
    await org.dispatch()
    results = await org.api("GET", f"/polls/{poll['id']}")
    assert results["answers"] == len(clients)
    assert results["tally"] == [{"option": "Yes", "count": 3}, {"option": "No", "count": 3}]
    for address in people:  # the quoted "Reply STOP" opted nobody out
        [found] = (await org.api("GET", "/supporters", params={"q": address}))["items"]
        assert found["opted_out"] is False
