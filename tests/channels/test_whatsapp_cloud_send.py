"""WhatsApp Cloud API sends against the fake Graph endpoint: request bodies and odd
answers. Graph's error codes and what each becomes are the send contract's table
(whatsapp_cloud_case.py SEND_CASES)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from channels.base import (
    ChannelMisconfigured,
    OutboundMessage,
    ProviderUnavailable,
    SendError,
    Template,
)
from channels.whatsapp_cloud.adapter import WhatsAppCloudAdapter
from channels.whatsapp_cloud.fake import FakeWhatsAppCloud
from tests.channels.whatsapp_cloud_case import (
    ACCESS_TOKEN,
    API_BASE,
    APP_SECRET,
    PHONE_NUMBER_ID,
    SETTINGS,
    VERIFY_TOKEN,
)

ClientFactory = Callable[..., Awaitable[httpx.AsyncClient]]
TO = "+16505551234"


@pytest.fixture
def fake() -> FakeWhatsAppCloud:
    return FakeWhatsAppCloud(
        access_token=ACCESS_TOKEN,
        phone_number_id=PHONE_NUMBER_ID,
        app_secret=APP_SECRET,
        api_base=API_BASE,
    )


@pytest.fixture
async def http(fake: FakeWhatsAppCloud) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=fake.transport()) as client:
        yield client


def make_adapter(
    http: httpx.AsyncClient, *, token: str = ACCESS_TOKEN, number: str = PHONE_NUMBER_ID
) -> WhatsAppCloudAdapter:
    return WhatsAppCloudAdapter(
        access_token=token,
        phone_number_id=number,
        app_secret=APP_SECRET,
        verify_token=VERIFY_TOKEN,
        http_client=http,
        api_base=API_BASE,
    )


def text(body: str = "See you Saturday at 10", to: str = TO, **kw: object) -> OutboundMessage:
    return OutboundMessage(message_id=1, channel="whatsapp", to=to, body=body, **kw)  # type: ignore[arg-type]


async def test_text_send_request_and_result(
    fake: FakeWhatsAppCloud, http: httpx.AsyncClient
) -> None:
    result = await make_adapter(http).send(text("Caf\u00e9 at 10 \U0001f44b"))
    [request] = fake.requests
    assert request.path == f"/v21.0/{PHONE_NUMBER_ID}/messages"
    assert request.authorization == f"Bearer {ACCESS_TOKEN}"
    assert request.json == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "16505551234",
        "type": "text",
        "text": {"body": "Caf\u00e9 at 10 \U0001f44b", "preview_url": False},
    }
    assert result.provider_message_id == request.wamid
    assert result.provider_message_id.startswith("wamid.HBgL")
    assert result.status == "sent"


async def test_template_send_orders_variables_by_number(
    fake: FakeWhatsAppCloud, http: httpx.AsyncClient
) -> None:
    template = Template(
        name="weekly_checkin",
        language="es_MX",
        variables={"2": "s\u00e1bado", "10": "x", "1": "Dana"},
    )
    await make_adapter(http).send(text(template=template))
    assert fake.requests[0].json == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "16505551234",
        "type": "template",
        "template": {
            "name": "weekly_checkin",
            "language": {"code": "es_MX"},
            "components": [
                {
                    "type": "body",
                    "parameters": [
                        {"type": "text", "text": "Dana"},
                        {"type": "text", "text": "s\u00e1bado"},
                        {"type": "text", "text": "x"},
                    ],
                }
            ],
        },
    }


async def test_template_without_variables_has_no_components(
    fake: FakeWhatsAppCloud, http: httpx.AsyncClient
) -> None:
    await make_adapter(http).send(text(template=Template(name="hello_world", language="en_US")))
    assert fake.requests[0].json["template"] == {
        "name": "hello_world",
        "language": {"code": "en_US"},
    }


async def test_media_send_uses_the_link_and_caption(
    fake: FakeWhatsAppCloud, http: httpx.AsyncClient
) -> None:
    message = text(
        "Flyer attached",
        media_urls=("https://cdn.example.org/flyer.JPG?v=2", "https://cdn.example.org/map.pdf"),
    )
    await make_adapter(http).send(message)
    sent = fake.requests[0].json
    assert sent["type"] == "image"
    assert sent["image"] == {
        "link": "https://cdn.example.org/flyer.JPG?v=2",
        "caption": "Flyer attached\nhttps://cdn.example.org/map.pdf",
    }


async def test_wrong_token_and_wrong_number_id_are_misconfiguration(
    fake: FakeWhatsAppCloud, http: httpx.AsyncClient
) -> None:
    with pytest.raises(ChannelMisconfigured) as raised:
        await make_adapter(http, token="EAAwrong").send(text())
    assert raised.value.code == "190"
    with pytest.raises(ChannelMisconfigured):
        await make_adapter(http, number="123456789012345").send(text())
    assert fake.accepted == []


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (httpx.Response(502, text="<html>Bad Gateway</html>"), ProviderUnavailable),
        (httpx.Response(200, json={"messaging_product": "whatsapp"}), SendError),
        (httpx.Response(200, text="not json"), SendError),
        (httpx.Response(400, json={"error": "a string"}), SendError),
    ],
    ids=["502-html", "200-without-id", "200-not-json", "400-odd-error"],
)
async def test_odd_answers(response: httpx.Response, expected: type[SendError]) -> None:
    async with httpx.AsyncClient(transport=httpx.MockTransport(lambda _: response)) as client:
        with pytest.raises(SendError) as raised:
            await make_adapter(client).send(text())
    assert type(raised.value) is expected


async def test_registry_builds_the_adapter_from_settings(
    make_client: ClientFactory, fake: FakeWhatsAppCloud
) -> None:
    client = await make_client(transport=fake.transport(), **SETTINGS)
    registry = client.ctx.registry  # type: ignore[attr-defined]
    adapter = registry.for_channel("whatsapp")
    assert isinstance(adapter, WhatsAppCloudAdapter)
    assert registry.by_provider["whatsapp"] is adapter
    assert adapter.sender_key("whatsapp") == f"whatsapp:{PHONE_NUMBER_ID}"
    caps = adapter.capabilities("whatsapp")
    assert (caps.max_length, caps.media, caps.needs_open_window) == (4096, True, True)
    assert ACCESS_TOKEN not in repr(adapter)
    result = await adapter.send(text())
    assert fake.accepted[0].wamid == result.provider_message_id


async def test_cloud_api_sends_whatsapp_when_twilio_is_configured_too(
    make_client: ClientFactory,
) -> None:
    client = await make_client(
        twilio_account_sid="AC" + "0" * 32,
        twilio_auth_token="twilio-token",
        twilio_whatsapp_from="whatsapp:+14155550199",
        **SETTINGS,
    )
    registry = client.ctx.registry  # type: ignore[attr-defined]
    assert isinstance(registry.for_channel("whatsapp"), WhatsAppCloudAdapter)


async def test_channel_is_off_without_all_four_credentials(make_client: ClientFactory) -> None:
    partial = {k: v for k, v in SETTINGS.items() if k != "whatsapp_verify_token"}
    client = await make_client(**partial)
    assert "whatsapp" not in client.ctx.registry.by_provider  # type: ignore[attr-defined]
