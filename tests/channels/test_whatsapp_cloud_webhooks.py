"""WhatsApp Cloud API webhooks through the real app: handshake, signatures, every
testdata payload stored as expected."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import func
from sqlmodel import select

from storage.models import Conversation, Message, Supporter, SupporterAddress
from tests.channels.whatsapp_cloud_case import (
    APP_SECRET,
    SETTINGS,
    VERIFY_TOKEN,
    payload,
    sign,
)

ClientFactory = Callable[..., Awaitable[httpx.AsyncClient]]
DANA = "+16505551234"


async def post(client: httpx.AsyncClient, body: bytes, signature: str | None = None) -> Any:
    headers = {"Content-Type": "application/json"}
    headers["X-Hub-Signature-256"] = signature if signature is not None else sign(body)
    return await client.post("/webhooks/whatsapp", content=body, headers=headers)


async def rows(client: httpx.AsyncClient, model: type, *order: Any) -> list[Any]:
    async with client.ctx.sessions() as session:  # type: ignore[attr-defined]
        return list((await session.exec(select(model).order_by(*order))).all())


async def count(client: httpx.AsyncClient, model: type) -> int:
    async with client.ctx.sessions() as session:  # type: ignore[attr-defined]
        return (await session.exec(select(func.count()).select_from(model))).one()


# (file, [(address, body, attachments)]) — each stored inbound message, in order.
INBOUND_CASES: list[tuple[str, list[tuple[str, str, list[dict[str, Any]]]]]] = [
    ("text_with_contact.json", [(DANA, "Hi! Count me in for Saturday.", [])]),
    (
        "image_with_caption.json",
        [
            (
                DANA,
                "Flyers are up at the library",
                [{"content_type": "image/jpeg", "media_id": "1003383421387256"}],
            )
        ],
    ),
    (
        "document.json",
        [
            (
                DANA,
                "",
                [
                    {
                        "content_type": "application/pdf",
                        "media_id": "1258423295173466",
                        "filename": "canvass-list.pdf",
                    }
                ],
            )
        ],
    ),
    (
        "media_audio_video_sticker.json",
        [
            (
                DANA,
                "",
                [{"content_type": "audio/ogg; codecs=opus", "media_id": "3011429342329913"}],
            ),
            (DANA, "march route", [{"content_type": "video/mp4", "media_id": "1181234567890123"}]),
            (DANA, "", [{"content_type": "image/webp", "media_id": "742234567890123"}]),
        ],
    ),
    (
        "location.json",
        [
            (
                DANA,
                "location: 37.4847,-122.1477 (Menlo Park Library, 800 Alma St, Menlo Park, CA)",
                [],
            )
        ],
    ),
    ("button_reply.json", [(DANA, "Yes, I'll be there", [])]),
    ("interactive_button_reply.json", [(DANA, "Morning shift", [])]),
    ("interactive_list_reply.json", [(DANA, "Phone bank", [])]),
    ("reaction.json", [(DANA, "\U0001f44d", [])]),
    ("unsupported_type.json", [(DANA, "[unsupported message type: unsupported]", [])]),
    (
        "non_ascii_escaped.json",
        [("+254712345678", "\u00a1Hola! Nos vemos el s\u00e1bado \U0001f44d \u2014 東京 1/2", [])],
    ),
    (
        "batch_two_entries.json",
        [
            (DANA, "first", []),
            ("+254712345678", "second", []),
            ("+5511987654321", "third", []),
            (DANA, "fourth", []),
        ],
    ),
    # Nothing to store: statuses for unknown messages, other fields, username-only users.
    ("status_delivered.json", []),
    ("account_update.json", []),
    ("username_user.json", []),
]


@pytest.mark.parametrize(("filename", "expected"), INBOUND_CASES, ids=[c[0] for c in INBOUND_CASES])
async def test_testdata_payload_is_stored_as_expected(
    make_client: ClientFactory, filename: str, expected: list[tuple[str, str, list[Any]]]
) -> None:
    client = await make_client(**SETTINGS)
    body = payload(filename)
    response = await post(client, body)
    assert response.status_code == 200
    assert response.text == ""
    messages = await rows(client, Message, Message.id)
    got = [(m.address, m.body, m.attachments) for m in messages]
    assert got == expected
    for message in messages:
        assert message.direction == "inbound"
        assert message.channel == "whatsapp"
        assert message.status == "received"
        assert message.provider_message_id.startswith("wamid.")
        raw = json.loads(message.raw)
        assert raw["message"]["id"] == message.provider_message_id
        assert raw["metadata"]["phone_number_id"] == SETTINGS["whatsapp_phone_number_id"]


async def test_batch_stores_each_message_once_even_when_replayed(
    make_client: ClientFactory,
) -> None:
    client = await make_client(**SETTINGS)
    body = payload("batch_two_entries.json")
    assert (await post(client, body)).status_code == 200
    assert (await post(client, body)).status_code == 200
    messages = await rows(client, Message, Message.id)
    assert [m.body for m in messages] == ["first", "second", "third", "fourth"]
    assert len({m.provider_message_id for m in messages}) == 4
    # Three people: Dana's two messages land in one conversation.
    assert await count(client, Supporter) == 3
    assert await count(client, Conversation) == 3
    dana = [m for m in messages if m.address == DANA]
    assert dana[0].conversation_id == dana[1].conversation_id
    # Each message keeps only its own JSON, not its neighbours'.
    assert "second" not in (messages[0].raw or "")


async def test_profile_name_names_the_new_supporter(make_client: ClientFactory) -> None:
    client = await make_client(**SETTINGS)
    assert (await post(client, payload("non_ascii_escaped.json"))).status_code == 200
    assert (await post(client, payload("batch_two_entries.json"))).status_code == 200
    supporters = await rows(client, Supporter, Supporter.id)
    addresses = {a.supporter_id: a for a in await rows(client, SupporterAddress)}
    named = {addresses[s.id].address: s.name for s in supporters}
    assert named == {
        "+254712345678": "Zo\u00eb Ng\u0169g\u0129",  # first seen in the escaped payload
        DANA: "Dana Okafor",
        "+5511987654321": "Jo\u00e3o Silva",
    }
    assert all(a.channel == "whatsapp" for a in addresses.values())


async def test_non_ascii_signature_is_over_the_exact_bytes(make_client: ClientFactory) -> None:
    client = await make_client(**SETTINGS)
    body = payload("non_ascii_escaped.json")
    assert b"\\u00a1" in body  # Meta's escapes, as received
    reserialised = json.dumps(json.loads(body), ensure_ascii=False).encode()
    response = await post(client, body, signature=sign(reserialised))
    assert response.status_code == 403
    assert await count(client, Message) == 0
    assert (await post(client, body)).status_code == 200
    assert await count(client, Message) == 1


@pytest.mark.parametrize(
    "signature",
    [
        "",
        "sha256=",
        "sha1=" + "0" * 40,
        "sha256=" + "z" * 64,
        sign(b"another body"),
        sign(b"", APP_SECRET + "x"),
    ],
    ids=["empty", "no-digest", "sha1", "not-hex", "other-body", "other-secret"],
)
async def test_bad_signatures_are_403(make_client: ClientFactory, signature: str) -> None:
    client = await make_client(**SETTINGS)
    response = await post(client, payload("text_with_contact.json"), signature=signature)
    assert response.status_code == 403
    assert await count(client, Message) == 0


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b'{"object":"instagram","entry":[]}', b'{"entry":[]}', b"\xff\xfe"],
    ids=["not-json", "list", "other-object", "no-object", "not-utf8"],
)
async def test_signed_garbage_is_400(make_client: ClientFactory, body: bytes) -> None:
    client = await make_client(**SETTINGS)
    assert (await post(client, body)).status_code == 400


HANDSHAKES = [
    (
        {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"},
        200,
        "1158201444",
    ),
    ({"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"}, 403, None),
    (
        {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1"},
        403,
        None,
    ),
    ({"hub.mode": "subscribe", "hub.challenge": "1"}, 403, None),
    ({}, 403, None),
]


@pytest.mark.parametrize(
    ("params", "status", "text"),
    HANDSHAKES,
    ids=["ok", "wrong-token", "wrong-mode", "no-token", "nothing"],
)
async def test_handshake(
    make_client: ClientFactory, params: dict[str, str], status: int, text: str | None
) -> None:
    client = await make_client(**SETTINGS)
    response = await client.get("/webhooks/whatsapp", params=params)
    assert response.status_code == status
    if text is not None:
        assert response.text == text
        assert response.headers["content-type"].startswith("text/plain")
    else:
        assert "1158201444" not in response.text


async def test_handshake_is_404_when_channel_is_off(make_client: ClientFactory) -> None:
    client = await make_client()
    params = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "9"}
    assert (await client.get("/webhooks/whatsapp", params=params)).status_code == 404


async def test_secrets_stay_out_of_the_logs(
    make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    client = await make_client(**SETTINGS)
    await post(client, payload("text_with_contact.json"), signature=sign(b"x"))
    await client.get(
        "/webhooks/whatsapp", params={"hub.mode": "subscribe", "hub.verify_token": "x"}
    )
    await post(client, payload("text_with_contact.json"))
    for secret in (APP_SECRET, VERIFY_TOKEN, SETTINGS["whatsapp_access_token"]):
        assert secret not in caplog.text
    assert "Count me in" not in "\n".join(r.getMessage() for r in caplog.records if r.levelno >= 20)
