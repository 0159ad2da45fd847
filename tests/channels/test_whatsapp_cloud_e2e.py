"""WhatsApp Cloud API end to end: a signed webhook in, the conversation over the REST API,
a reply sent by the dispatcher to the fake Graph endpoint, and Meta's later 131047 failure
recorded on it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx

from channels.whatsapp_cloud.fake import FakeWhatsAppCloud
from routing.dispatch.dispatcher import Dispatcher
from tests.channels.whatsapp_cloud_case import (
    ACCESS_TOKEN,
    API_BASE,
    APP_SECRET,
    PHONE_NUMBER_ID,
    SETTINGS,
    payload,
    sign,
)
from tests.conftest import bearer, new_key

ClientFactory = Callable[..., Awaitable[httpx.AsyncClient]]


async def test_inbound_reply_and_async_window_failure(make_client: ClientFactory) -> None:
    fake = FakeWhatsAppCloud(
        access_token=ACCESS_TOKEN,
        phone_number_id=PHONE_NUMBER_ID,
        app_secret=APP_SECRET,
        api_base=API_BASE,
    )
    client = await make_client(transport=fake.transport(), **SETTINGS)
    ctx = client.ctx  # type: ignore[attr-defined]
    client.headers.update(bearer(await new_key(ctx)))

    body = payload("image_with_caption.json")
    webhook = await client.post(
        "/webhooks/whatsapp",
        content=body,
        headers={"Content-Type": "application/json", "X-Hub-Signature-256": sign(body)},
    )
    assert webhook.status_code == 200

    conversations = (await client.get("/api/v1/conversations")).json()["items"]
    assert len(conversations) == 1
    convo = conversations[0]
    supporter = (await client.get(f"/api/v1/supporters/{convo['supporter_id']}")).json()
    assert supporter["name"] == "Dana Okafor"
    [inbound] = (await client.get(f"/api/v1/conversations/{convo['id']}/messages")).json()["items"]
    assert (inbound["direction"], inbound["channel"], inbound["body"]) == (
        "inbound",
        "whatsapp",
        "Flyers are up at the library",
    )
    assert inbound["attachments"] == [
        {"content_type": "image/jpeg", "media_id": "1003383421387256"}
    ]

    queued = await client.post(
        f"/api/v1/supporters/{convo['supporter_id']}/messages", json={"body": "Thank you!"}
    )
    assert queued.status_code == 202, queued.text
    assert queued.json()["channel"] == "whatsapp"
    message_id = queued.json()["id"]

    await Dispatcher(ctx).run_until_idle()
    [sent] = fake.accepted
    assert sent.json["to"] == "16505551234"
    assert sent.json["text"] == {"body": "Thank you!", "preview_url": False}
    after_send = (await client.get(f"/api/v1/messages/{message_id}")).json()
    assert (after_send["status"], after_send["provider_message_id"]) == ("sent", sent.wamid)

    assert sent.wamid is not None
    status_body, headers = fake.status_webhook(sent.wamid, "failed", error_code=131047)
    answer = await client.post("/webhooks/whatsapp", content=status_body, headers=headers)
    assert answer.status_code == 200
    failed = (await client.get(f"/api/v1/messages/{message_id}")).json()
    # No other channel is configured for Dana, so nothing to fall back to.
    assert (failed["status"], failed["error_code"]) == ("failed", "131047")
    messages = (await client.get(f"/api/v1/conversations/{convo['id']}/messages")).json()
    assert [m["direction"] for m in messages["items"]] == ["inbound", "outbound"]
