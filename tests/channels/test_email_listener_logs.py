"""The inbound SMTP listener writes no supporter's address or message to the logs, at any
level: aiosmtpd's own logger (`mail.log`) logs command lines at INFO and mail lines at DEBUG."""

from __future__ import annotations

import logging

import pytest

from tests.channels.test_email_listener import ClientFactory, start_inbox

SECRET_BODY = "meet-at-the-east-gate-7731"
SENDER = "hidden.supporter.4417@example.org"


async def test_no_address_or_body_in_any_log_line(
    make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    inbox, listener = await start_inbox(make_client)
    caplog.set_level(logging.DEBUG)
    for name in ("mail.log", "aiosmtpd", "channels", "routing", "gateway"):
        caplog.set_level(logging.DEBUG, logger=name)
    try:
        mail = (
            f"From: <{SENDER}>\r\nTo: <team@rally.example.org>\r\n"
            f"Subject: hi\r\nMessage-ID: <logs-1@example.org>\r\n\r\n{SECRET_BODY}\r\n"
        ).encode()
        await inbox.deliver(mail, sender=SENDER)
        [message] = await inbox.messages()
        assert SECRET_BODY in message.body  # it was received and stored
    finally:
        await listener.stop()
    lines = [r.getMessage() + " " + (r.exc_text or "") for r in caplog.records]
    assert lines, "the capture saw no records at all"
    assert not [line for line in lines if SECRET_BODY in line or SENDER in line]
