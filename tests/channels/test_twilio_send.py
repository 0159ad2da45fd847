"""Twilio send(): the Messages API request it makes, against the fake Messages API
(channels/twilio/fake.py) over httpx.MockTransport. The answers and the error each
becomes, and the logs, are the send contract's table (twilio_case.py SEND_CASES)."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from channels.base import (
    ChannelMisconfigured,
    InvalidRecipient,
    OutboundMessage,
    RecipientOptedOut,
    Template,
    Throttled,
)
from channels.twilio import TwilioAdapter, TwilioConfig, build_adapter
from channels.twilio.fake import FakeTwilio, Reply
from gateway.channel_configs import twilio_config
from gateway.settings import Settings
from tests.channels.twilio_case import (
    ACCOUNT_SID,
    API_BASE,
    AUTH_TOKEN,
    SETTINGS,
    SMS_FROM,
    TESTDATA,
    WHATSAPP_FROM,
)
from tests.conftest import FakeClock, make_settings

TO = "+14155550100"
CALLBACK = "https://rallypoint.example.org/webhooks/twilio/status"
MESSAGES_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"


def _config(settings: Settings) -> TwilioConfig:
    config = twilio_config(settings)
    assert config is not None
    return config


def _build(settings: Settings, client: httpx.AsyncClient) -> TwilioAdapter | None:
    config = twilio_config(settings)
    return None if config is None else build_adapter(config, client)


def _adapter(
    fake: FakeTwilio | None = None, clock: FakeClock | None = None, **overrides: Any
) -> tuple[TwilioAdapter, FakeTwilio]:
    fake = fake or FakeTwilio(ACCOUNT_SID, AUTH_TOKEN)
    settings = make_settings("sqlite://", **{**SETTINGS, **overrides})
    config = _config(settings)
    client = httpx.AsyncClient(transport=httpx.MockTransport(fake))
    return TwilioAdapter(config, client, clock=clock or FakeClock()), fake


def _sms(body: str = "Phone bank tonight at 7", **kw: Any) -> OutboundMessage:
    return OutboundMessage(message_id=1, channel="sms", to=TO, body=body, **kw)


def _whatsapp(body: str = "Habari", **kw: Any) -> OutboundMessage:
    return OutboundMessage(message_id=2, channel="whatsapp", to="+254712345678", body=body, **kw)


async def test_sms_request_and_result() -> None:
    adapter, fake = _adapter()
    result = await adapter.send(_sms())
    [sent] = fake.requests
    assert sent.request.method == "POST"
    assert str(sent.request.url) == API_BASE + MESSAGES_PATH
    expected_auth = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    assert sent.request.headers["authorization"] == f"Basic {expected_auth}"
    assert sent.form == {
        "To": [TO],
        "From": [SMS_FROM],
        "Body": ["Phone bank tonight at 7"],
        "StatusCallback": [CALLBACK],
    }
    assert re.fullmatch(r"SM[0-9a-f]{32}", result.provider_message_id)
    assert result.provider_message_id == sent.sid
    # Twilio says "queued"; accepted with an id is "sent" in our vocabulary.
    assert (result.status, result.segments) == ("sent", 1)


async def test_long_sms_reports_segments() -> None:
    adapter, _ = _adapter()
    result = await adapter.send(_sms("x" * 400))
    assert result.segments == 3


async def test_messaging_service_replaces_from() -> None:
    adapter, fake = _adapter(twilio_messaging_service_sid="MG9752274e9e519418a7406176694466fa")
    await adapter.send(_sms())
    [sent] = fake.requests
    assert sent.get("MessagingServiceSid") == "MG9752274e9e519418a7406176694466fa"
    assert "From" not in sent.form
    assert adapter.sender_key("sms") == "MG9752274e9e519418a7406176694466fa"


async def test_whatsapp_addresses_carry_the_prefix() -> None:
    adapter, fake = _adapter(twilio_whatsapp_from="+14155550199")  # prefix left out
    await adapter.send(_whatsapp())
    [sent] = fake.requests
    assert (sent.get("To"), sent.get("From"), sent.get("Body")) == (
        "whatsapp:+254712345678",
        WHATSAPP_FROM,
        "Habari",
    )
    assert sent.get("StatusCallback") == CALLBACK


async def test_whatsapp_template_sends_content_sid_and_variables() -> None:
    adapter, fake = _adapter()
    template = Template(
        name="event_reminder",
        variables={"1": "Amina", "2": "Saturday 10:00"},
        content_sid="HXb5b62575e6e4ff6129ad7c8efe1f983e",
    )
    await adapter.send(_whatsapp(template=template))
    [sent] = fake.requests
    assert sent.get("ContentSid") == "HXb5b62575e6e4ff6129ad7c8efe1f983e"
    assert json.loads(sent.get("ContentVariables") or "") == {"1": "Amina", "2": "Saturday 10:00"}
    assert "Body" not in sent.form


async def test_media_urls_repeat() -> None:
    adapter, fake = _adapter()
    urls = ["https://example.org/flyer.jpg", "https://example.org/map.png"]
    await adapter.send(_sms(media_urls=urls))
    assert fake.requests[0].form["MediaUrl"] == urls


async def test_429_retry_after_http_date_uses_the_clock() -> None:
    clock = FakeClock(datetime(2026, 3, 4, 15, 0, tzinfo=UTC))
    adapter, fake = _adapter(clock=clock)
    fake.script(TO, Reply.throttled("Wed, 04 Mar 2026 15:00:30 GMT"))
    with pytest.raises(Throttled) as caught:
        await adapter.send(_sms())
    assert caught.value.retry_after == 30.0


def _replay(status: int, name: str) -> httpx.MockTransport:
    content = (TESTDATA / name).read_bytes()
    return httpx.MockTransport(lambda request: httpx.Response(status, content=content))


async def test_testdata_answers() -> None:
    settings = make_settings("sqlite://", **SETTINGS)
    created = _build(settings, httpx.AsyncClient(transport=_replay(201, "message_created.json")))
    assert created is not None
    result = await created.send(_sms())
    assert (result.provider_message_id, result.status, result.segments) == (
        "SMb0b1b2b3b4b5b6b7b8b9babbbcbdbebf",
        "sent",
        1,
    )
    refused = _build(settings, httpx.AsyncClient(transport=_replay(400, "error_21211.json")))
    assert refused is not None
    with pytest.raises(InvalidRecipient) as caught:
        await refused.send(_sms())
    assert caught.value.code == "21211"


async def test_created_but_failed_raises_the_classified_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            201, json={"sid": "SM" + "0" * 32, "status": "failed", "error_code": 21610}
        )

    config = _config(make_settings("sqlite://", **SETTINGS))
    adapter = TwilioAdapter(config, httpx.AsyncClient(transport=httpx.MockTransport(handler)))
    with pytest.raises(RecipientOptedOut):
        await adapter.send(_sms())


async def test_unconfigured_sender_sends_nothing() -> None:
    adapter, fake = _adapter(twilio_whatsapp_from=None)
    with pytest.raises(ChannelMisconfigured):
        await adapter.send(_whatsapp())
    with pytest.raises(ChannelMisconfigured):
        await adapter.send(OutboundMessage(3, "telegram", "12345", "hi"))
    assert fake.requests == []


CHANNELS = [
    ("sms from", {"twilio_whatsapp_from": None}, ("sms",)),
    (
        "messaging service",
        {
            "twilio_sms_from": None,
            "twilio_whatsapp_from": None,
            "twilio_messaging_service_sid": "MG1",
        },
        ("sms",),
    ),
    ("whatsapp only", {"twilio_sms_from": None}, ("whatsapp",)),
    ("both", {}, ("sms", "whatsapp")),
]


@pytest.mark.parametrize(("label", "overrides", "channels"), CHANNELS, ids=[c[0] for c in CHANNELS])
def test_channels_follow_the_senders(
    label: str, overrides: dict[str, Any], channels: tuple[str, ...]
) -> None:
    adapter, _ = _adapter(**overrides)
    assert adapter.channels == channels


def test_disabled_without_credentials() -> None:
    client = httpx.AsyncClient()
    assert _build(make_settings("sqlite://", twilio_sms_from=SMS_FROM), client) is None
    only_sid = make_settings("sqlite://", twilio_account_sid=ACCOUNT_SID, twilio_sms_from=SMS_FROM)
    assert _build(only_sid, client) is None


def test_capabilities_and_sender_keys() -> None:
    adapter, _ = _adapter()
    sms, whatsapp = adapter.capabilities("sms"), adapter.capabilities("whatsapp")
    assert (sms.max_length, sms.media, sms.needs_open_window) == (1600, True, False)
    assert (whatsapp.max_length, whatsapp.needs_open_window) == (1600, True)
    assert (adapter.sender_key("sms"), adapter.sender_key("whatsapp")) == (SMS_FROM, WHATSAPP_FROM)


RATE_UNITS = [
    ("short sms", _sms(), 1),
    ("3-segment GSM-7 sms", _sms("Phone bank tonight at 7. " * 16), 3),
    ("70 extension characters: 140 septets", _sms("{" * 70), 1),
    ("81 extension characters: 162 septets", _sms("{" * 81), 2),
    ("71 UCS-2 characters", _sms("ï" * 71), 2),
    ("35 emoji: 70 UTF-16 units", _sms("\U0001f642" * 35), 1),
    ("36 emoji: 72 UTF-16 units", _sms("\U0001f642" * 36), 2),
    (
        "mms: one message",
        _sms("Phone bank tonight at 7. " * 16, media_urls=("https://x.test/a.jpg",)),
        1,
    ),
    ("whatsapp: one message", _whatsapp("Phone bank tonight at 7. " * 16), 1),
]


@pytest.mark.parametrize(("label", "message", "units"), RATE_UNITS, ids=[c[0] for c in RATE_UNITS])
def test_rate_units_are_sms_segments(label: str, message: OutboundMessage, units: int) -> None:
    # Twilio meters a sender in message segments a second; MMS and WhatsApp in messages.
    adapter, _ = _adapter()
    assert adapter.rate_units(message) == units


async def test_fake_awaits_the_delay_hook() -> None:
    seen: list[str] = []

    async def delay(request: httpx.Request) -> None:
        seen.append(request.url.path)

    adapter, _ = _adapter(fake=FakeTwilio(ACCOUNT_SID, AUTH_TOKEN, delay=delay))
    await adapter.send(_sms())
    assert seen == [MESSAGES_PATH]
