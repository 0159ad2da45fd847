"""Outbound email against a real SMTP server on loopback (channels/email/fake.py). The
server's refusals and what each becomes are the send contract's table (email_case.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator

import httpx
import pytest

from channels.base import (
    ChannelMisconfigured,
    InvalidRecipient,
    OutboundMessage,
)
from channels.email.adapter import EmailAdapter, build_adapter
from channels.email.fake import FakeSmtpServer
from gateway.channel_configs import email_config

OURS = "team@rally.example.org"
ClientFactory = Callable[..., Awaitable[httpx.AsyncClient]]


@pytest.fixture
def smtp() -> Iterator[FakeSmtpServer]:
    with FakeSmtpServer() as server:
        yield server


def adapter_for(port: int, **kwargs: object) -> EmailAdapter:
    values: dict[str, object] = {
        "host": "127.0.0.1",
        "port": port,
        "sender": f"Rally Team <{OURS}>",
        "starttls": False,
    }
    values.update(kwargs)
    return EmailAdapter(**values)  # type: ignore[arg-type]


def outbound(**kwargs: object) -> OutboundMessage:
    values: dict[str, object] = {
        "message_id": 7,
        "channel": "email",
        "to": "amina@example.com",
        "body": "Hi Amina,\n\nThe rally starts at 10 <sharp> & ends at 2.\nBring water.",
    }
    values.update(kwargs)
    return OutboundMessage(**values)  # type: ignore[arg-type]


async def test_send_delivers_headers_and_both_parts(smtp: FakeSmtpServer) -> None:
    result = await adapter_for(smtp.port).send(
        outbound(
            subject="Saturday rally",
            in_reply_to="<CAplain.0001@mail.example.com>",
            references="<rp-out-1@rally.example.org> <CAplain.0001@mail.example.com>",
        )
    )
    [mail] = smtp.messages
    assert mail.mail_from == OURS
    assert mail.rcpt_tos == ("amina@example.com",)
    msg = mail.message
    assert msg["From"] == f"Rally Team <{OURS}>"
    assert msg["To"] == "amina@example.com"
    assert msg["Subject"] == "Saturday rally"
    assert msg["Message-ID"] == result.provider_message_id
    assert result.provider_message_id.endswith("@rally.example.org>")
    assert result.status == "sent"
    assert msg["In-Reply-To"] == "<CAplain.0001@mail.example.com>"
    assert msg["References"] == "<rp-out-1@rally.example.org> <CAplain.0001@mail.example.com>"
    plain = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert plain is not None and html is not None
    assert plain.get_content().replace("\r\n", "\n").rstrip("\n") == outbound().body
    html_text = html.get_content()
    assert "<p>Hi Amina,</p>" in html_text
    assert "10 &lt;sharp&gt; &amp; ends at 2.<br>" in html_text
    assert "<sharp>" not in html_text


async def test_given_message_id_is_used_and_default_subject(smtp: FakeSmtpServer) -> None:
    result = await adapter_for(smtp.port).send(outbound(email_message_id="rp-42@rally.example.org"))
    [mail] = smtp.messages
    assert result.provider_message_id == "<rp-42@rally.example.org>"
    assert mail.message["Message-ID"] == "<rp-42@rally.example.org>"
    assert mail.message["Subject"] == "Message from Rallypoint"
    assert mail.message["In-Reply-To"] is None


async def test_header_injection_is_flattened(smtp: FakeSmtpServer) -> None:
    await adapter_for(smtp.port).send(outbound(subject="Hi\r\nBcc: victim@example.com"))
    [mail] = smtp.messages
    assert mail.message["Bcc"] is None
    assert mail.rcpt_tos == ("amina@example.com",)


async def test_not_an_address_is_invalid_recipient(smtp: FakeSmtpServer) -> None:
    with pytest.raises(InvalidRecipient):
        await adapter_for(smtp.port).send(outbound(to="not an address"))
    assert smtp.messages == []


async def test_login_with_credentials() -> None:
    with FakeSmtpServer(credentials=("mailer", "s3cret")) as server:
        await adapter_for(server.port, username="mailer", password="s3cret").send(outbound())
        assert len(server.messages) == 1


async def test_starttls_required_but_unsupported_is_misconfigured(smtp: FakeSmtpServer) -> None:
    with pytest.raises(ChannelMisconfigured):
        await adapter_for(smtp.port, starttls=True).send(outbound())
    assert smtp.messages == []


async def test_registry_enables_email_only_with_host_and_from(
    make_client: ClientFactory,
) -> None:
    off = await make_client(smtp_host="127.0.0.1")
    assert "email" not in off.ctx.registry.enabled_channels  # type: ignore[attr-defined]
    on = await make_client(smtp_host="127.0.0.1", smtp_from=OURS, smtp_username="mailer")
    registry = on.ctx.registry  # type: ignore[attr-defined]
    adapter = registry.for_channel("email")
    assert isinstance(adapter, EmailAdapter)
    assert adapter.sender_key("email") == f"email:{OURS}"
    caps = adapter.capabilities("email")
    assert (caps.max_length, caps.media) == (None, True)  # media go as attachments
    assert registry.by_provider["email"] is adapter


async def test_org_name_sets_default_subject(smtp: FakeSmtpServer) -> None:
    from tests.conftest import make_settings

    settings = make_settings(
        "sqlite://",
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_from=OURS,
        smtp_starttls=False,
        org_name="Nairobi Canvassers",
    )
    async with httpx.AsyncClient() as http:
        config = email_config(settings)
        assert config is not None
        adapter = build_adapter(config, http)
        await adapter.send(outbound())
    assert smtp.messages[0].message["Subject"] == "Message from Nairobi Canvassers"
