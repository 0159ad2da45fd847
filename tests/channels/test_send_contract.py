"""Every adapter in the registry, one table per provider (tests/channels/<x>_case.py):
success gives the provider's id and status; a 429 (or its analogue) is Throttled with
its retry-after; a dropped connection, a timeout or a 5xx is ProviderUnavailable; each
documented permanent error is its SendError; an unknown code is a permanent SendError.
No secret appears in the error or in any log record, at any level, of any logger."""

from __future__ import annotations

import re
from dataclasses import fields, replace
from typing import Any

import pytest

from channels.base import OutboundMedia, SendError, SendResult, Throttled
from channels.registry import ChannelConfigs
from tests.channels.africastalking_case import AfricasTalkingSendRig
from tests.channels.email_case import EmailSendRig
from tests.channels.send_contract import SendCase, SendRig, all_logs, leaked
from tests.channels.signal_case import SignalSendRig
from tests.channels.telegram_case import TelegramSendRig
from tests.channels.twilio_case import TwilioSendRig
from tests.channels.whatsapp_cloud_case import WhatsAppCloudSendRig

RIGS: list[SendRig[Any]] = [
    TwilioSendRig(),
    WhatsAppCloudSendRig(),
    TelegramSendRig(),
    EmailSendRig(),
    SignalSendRig(),
    AfricasTalkingSendRig(),
]
ROWS = [(rig, case) for rig in RIGS for case in rig.cases]


def test_every_provider_in_the_registry_has_a_send_table() -> None:
    assert sorted(rig.provider for rig in RIGS) == sorted(f.name for f in fields(ChannelConfigs))
    for rig in RIGS:
        outcomes = {case.error for case in rig.cases}
        # Each table covers success, throttling, the provider down and a permanent error.
        assert {None, Throttled, SendError} <= outcomes, rig.provider
        assert any(c.error is Throttled and c.retry_after is None for c in rig.cases)


@pytest.mark.parametrize(
    ("rig", "case"), ROWS, ids=[f"{rig.provider}: {case.label}" for rig, case in ROWS]
)
async def test_send(rig: SendRig[Any], case: SendCase[Any]) -> None:
    raised: SendError | None = None
    result: SendResult | None = None
    with all_logs() as records:
        async with rig.open(case.answer) as adapter:
            try:
                result = await adapter.send(rig.message())
            except SendError as error:
                raised = error
            if case.answers_once and case.error is not None:
                # The provider answers normally again: nothing stuck in the adapter.
                assert (await adapter.send(rig.message())).provider_message_id
    if case.error is None:
        assert raised is None, repr(raised)
        assert result is not None
        assert re.fullmatch(case.result_id, result.provider_message_id), result
        assert result.status == case.result_status
    else:
        assert type(raised) is case.error, repr(raised)
        assert raised.code == case.code
        if isinstance(raised, Throttled):
            assert raised.retry_after == case.retry_after
        assert not [s for s in rig.secrets if s in f"{raised} {raised!r}"]
    body = rig.message().body
    assert not leaked(records, [*rig.secrets, body])


def test_the_log_check_finds_a_secret_wherever_a_record_holds_it() -> None:
    import logging

    log = logging.getLogger("channels.contract-check")
    with all_logs() as records:
        log.debug("token %s", "tok-1")
        log.debug({"password": "tok-2"})
        try:
            raise ValueError("tok-3")
        except ValueError:
            log.debug("failed", exc_info=True)
        logging.getLogger("mail.log").debug("tok-4")  # the fake SMTP server's own
    found = {line.split("…")[0] for line in leaked(records, ["tok-1", "tok-2", "tok-3", "tok-4"])}
    assert found == {f"channels.contract-check: tok-{n}" for n in (1, 2, 3)}


MEDIA_URL = "https://rallypoint.example.org/m/Secret-Page-Token-0123456789/media/0"


@pytest.mark.parametrize("rig", RIGS, ids=[rig.provider for rig in RIGS])
async def test_a_message_with_media_is_sent_and_its_url_is_never_logged(
    rig: SendRig[Any],
) -> None:
    """Every adapter takes the optional media (content type known) and sends: files where
    its channel takes them; the URL (a public page's secret token) stays out of the logs."""
    success = next(case for case in rig.cases if case.error is None)
    message = replace(
        rig.message(),
        media=(OutboundMedia(MEDIA_URL, "image/png", "poster.png"),),
        media_urls=(MEDIA_URL,),
    )
    with all_logs() as records:
        async with rig.open(success.answer) as adapter:
            if not adapter.capabilities(message.channel).media:
                # Routing sends a link in the text instead: the adapter sees no media.
                message = replace(message, media=(), media_urls=())
            result = await adapter.send(message)
    assert re.fullmatch(success.result_id, result.provider_message_id), result
    assert not leaked(records, [*rig.secrets, MEDIA_URL, message.body])
