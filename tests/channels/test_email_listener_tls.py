"""STARTTLS on the inbound SMTP listener, over real SMTP on loopback with a test CA."""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiosmtplib
import httpx
import pytest
import trustme
import uvicorn
from cryptography.hazmat.primitives import serialization

from gateway.cli import main
from storage.models import Message
from tests.channels.test_email_listener import OURS, TIMEOUT, Inbox, eml, start_inbox

ClientFactory = Callable[..., Awaitable[httpx.AsyncClient]]


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def pem(ca: trustme.CA, tmp_path: Path) -> dict[str, str]:
    """The listener's certificate (for 127.0.0.1) and key, as TLS settings."""
    server = ca.issue_cert("127.0.0.1")
    server.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    server.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    return {
        "inbound_smtp_tls_cert": str(tmp_path / "cert.pem"),
        "inbound_smtp_tls_key": str(tmp_path / "key.pem"),
    }


@pytest.fixture
def client_tls(ca: trustme.CA) -> ssl.SSLContext:
    """A client context that trusts only the test CA and checks the host name."""
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


async def send_over_tls(inbox: Inbox, tls: ssl.SSLContext, raw: bytes) -> None:
    await aiosmtplib.send(
        raw,
        sender="amina.otieno@example.com",
        recipients=[OURS],
        hostname="127.0.0.1",
        port=inbox.port,
        start_tls=True,
        tls_context=tls,
        timeout=TIMEOUT,
    )


async def test_starttls_delivers_and_the_mail_is_stored(
    make_client: ClientFactory, pem: dict[str, str], client_tls: ssl.SSLContext
) -> None:
    box, listener = await start_inbox(make_client, **pem)
    try:
        async with aiosmtplib.SMTP(
            hostname="127.0.0.1", port=box.port, start_tls=False, timeout=TIMEOUT
        ) as smtp:
            await smtp.ehlo()
            assert smtp.supports_extension("starttls")
            await smtp.starttls(tls_context=client_tls)
            assert smtp.transport is not None
            tls = smtp.transport.get_extra_info("ssl_object")
            assert tls is not None and tls.version() in ("TLSv1.2", "TLSv1.3")
            await smtp.sendmail("amina.otieno@example.com", [OURS], eml("plain.eml"))
        [message] = await box.messages()
        assert (message.direction, message.channel) == ("inbound", "email")
        assert message.address == "amina.otieno@example.com"
        assert message.body.startswith("Hi team,\n\nI can canvass on Saturday")
        # Opportunistic: a client without TLS is still heard.
        await box.deliver(eml("html_only.eml"))
        assert await box.count(Message) == 2
    finally:
        await listener.stop()


async def test_require_tls_refuses_mail_in_clear_and_stores_nothing(
    make_client: ClientFactory, pem: dict[str, str], client_tls: ssl.SSLContext
) -> None:
    box, listener = await start_inbox(make_client, inbound_smtp_require_tls=True, **pem)
    try:
        with pytest.raises(aiosmtplib.SMTPSenderRefused) as refused:
            await box.deliver(eml("plain.eml"))
        assert refused.value.code == 530
        assert await box.count(Message) == 0
        await send_over_tls(box, client_tls, eml("plain.eml"))  # the MTA's retry, with TLS
        [message] = await box.messages()
        assert message.address == "amina.otieno@example.com"
    finally:
        await listener.stop()


async def test_without_tls_settings_starttls_is_not_offered(make_client: ClientFactory) -> None:
    box, listener = await start_inbox(make_client)
    try:
        async with aiosmtplib.SMTP(
            hostname="127.0.0.1", port=box.port, start_tls=False, timeout=TIMEOUT
        ) as smtp:
            response = await smtp.ehlo()
            assert response.code == 250
            assert not smtp.supports_extension("starttls")
    finally:
        await listener.stop()


def encrypted_key(ca: trustme.CA, path: Path) -> str:
    key = serialization.load_pem_private_key(ca.issue_cert("x").private_key_pem.bytes(), None)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    return str(path)


@pytest.mark.parametrize(
    ("case", "error"),
    [
        ("cert only", "RALLYPOINT_INBOUND_SMTP_TLS_KEY is not set"),
        ("key only", "RALLYPOINT_INBOUND_SMTP_TLS_CERT is not set"),
        ("require without cert", "RALLYPOINT_INBOUND_SMTP_REQUIRE_TLS needs"),
        ("missing cert file", "RALLYPOINT_INBOUND_SMTP_TLS_CERT: cannot read .*nowhere.pem"),
        ("key is a directory", "RALLYPOINT_INBOUND_SMTP_TLS_KEY: cannot read"),
        (
            "not PEM",
            "RALLYPOINT_INBOUND_SMTP_TLS_CERT / RALLYPOINT_INBOUND_SMTP_TLS_KEY: .*not a PEM",
        ),
        ("key of another cert", "not a PEM .*KEY_VALUES_MISMATCH"),
        ("encrypted key", "unencrypted private key"),
    ],
)
async def test_bad_tls_settings_are_a_clear_error(
    make_client: ClientFactory,
    pem: dict[str, str],
    ca: trustme.CA,
    tmp_path: Path,
    case: str,
    error: str,
) -> None:
    cert, key = pem["inbound_smtp_tls_cert"], pem["inbound_smtp_tls_key"]
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    other_key = tmp_path / "other-key.pem"
    ca.issue_cert("127.0.0.1").private_key_pem.write_to_path(str(other_key))
    settings = {
        "cert only": {"inbound_smtp_tls_cert": cert},
        "key only": {"inbound_smtp_tls_key": key},
        "require without cert": {"inbound_smtp_require_tls": True},
        "missing cert file": {**pem, "inbound_smtp_tls_cert": str(tmp_path / "nowhere.pem")},
        "key is a directory": {**pem, "inbound_smtp_tls_key": str(tmp_path)},
        "not PEM": {**pem, "inbound_smtp_tls_cert": str(garbage)},
        "key of another cert": {**pem, "inbound_smtp_tls_key": str(other_key)},
        "encrypted key": {**pem, "inbound_smtp_tls_key": encrypted_key(ca, tmp_path / "enc.pem")},
    }[case]
    with pytest.raises(ValueError, match=error):
        await start_inbox(make_client, **settings)


def test_serve_with_bad_tls_settings_exits_with_one_line(
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def never_serve(self: uvicorn.Server, *args: object) -> None:
        raise AssertionError("serve started despite bad TLS settings")

    monkeypatch.setattr(uvicorn.Server, "run", never_serve)
    monkeypatch.setenv("RALLYPOINT_DATABASE_URL", database_url)
    monkeypatch.setenv("RALLYPOINT_INBOUND_SMTP_PORT", "2525")
    monkeypatch.setenv("RALLYPOINT_INBOUND_SMTP_TLS_CERT", str(tmp_path / "cert.pem"))
    monkeypatch.chdir(tmp_path)  # no stray .env
    assert main(["serve"]) == 2
    err = capsys.readouterr().err
    assert "error: RALLYPOINT_INBOUND_SMTP_TLS_KEY is not set" in err
    assert "Traceback" not in err
