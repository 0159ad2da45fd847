"""GET /api/v1/messages/{id}/attachments/{n}: media a supporter sent over WhatsApp (Cloud
API), Telegram or Twilio MMS arrives by signed webhook as metadata only, and the organizer
gets its bytes through the API, fetched from the provider fake with the credentials the
real provider wants. Wrong credentials, media the provider no longer has, media over
RALLYPOINT_MAX_MEDIA_BYTES, other teams' messages and bad indexes answer documented errors.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from channels.base import Attachment, InboundMessage
from routing.inbound.store import ingest
from tests.channels import telegram_case, twilio_case, whatsapp_cloud_case
from tests.conftest import FakeClock
from tests.e2e.harness import MakeClient, Org, Providers

PHONE = "+16505551234"
TG_CHAT = 5550001
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 12 + b"\xff\xd9"
PDF = b"%PDF-1.4\n" + b"turf list " * 300 + b"\n%%EOF\n"
BIG = b"\x89PNG" + b"\x00" * 65_536
IDS = itertools.count(1)  # each delivery its own provider message id


def attachment_url(message_id: int, index: int = 0) -> str:
    return f"/api/v1/messages/{message_id}/attachments/{index}"


async def only_inbound(org: Org) -> dict[str, Any]:
    """The newest inbound message, read through the API as an organizer would find it."""
    [convo] = (await org.api("GET", "/conversations"))["items"]
    items = (await org.api("GET", f"/conversations/{convo['id']}/messages"))["items"]
    inbound: dict[str, Any] = [m for m in items if m["direction"] == "inbound"][-1]
    return inbound


# -- each provider's inbound media, signed as the provider signs it ------------------


async def cloud_image(org: Org, content: bytes, mime_type: str = "image/jpeg") -> int:
    media_id = org.providers.cloud.add_media(content, mime_type)
    data = json.loads(whatsapp_cloud_case.payload("image_with_caption.json"))
    [message] = data["entry"][0]["changes"][0]["value"]["messages"]
    message["id"] = f"wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQ{next(IDS):08d}"
    message["image"].update(id=media_id, mime_type=mime_type)
    body = json.dumps(data, separators=(",", ":")).encode()
    await org.deliver(whatsapp_cloud_case.signed_post(body))
    message = await only_inbound(org)
    assert message["attachments"] == [{"content_type": mime_type, "media_id": media_id}]
    return int(message["id"])


async def telegram_photo(org: Org, content: bytes, size: int | None = None) -> int:
    file_id = org.providers.telegram.add_file(content, size=size)
    data = telegram_case.load("photo_caption")
    data["update_id"] += next(IDS)
    data["message"]["photo"][-1].update(file_id=file_id, file_size=size or len(content))
    await org.deliver(telegram_case.post(data))
    message = await only_inbound(org)
    assert message["attachments"][0]["media_id"] == file_id
    return int(message["id"])


async def twilio_mms(org: Org, *media: tuple[bytes, str]) -> int:
    params = {k: v for k, v in twilio_case.form("inbound_mms.json").items() if "Media" not in k}
    sid = f"MM{next(IDS):032x}"
    params.update(MessageSid=sid, SmsMessageSid=sid, SmsSid=sid)
    for n, (content, content_type) in enumerate(media):
        params[f"MediaUrl{n}"] = org.providers.twilio.add_media(
            content, content_type, params["MessageSid"]
        )
        params[f"MediaContentType{n}"] = content_type
    params["NumMedia"] = str(len(media))
    await org.deliver(twilio_case.signed_post(params))
    message = await only_inbound(org)
    assert len(message["attachments"]) == len(media)
    return int(message["id"])


Inbound = Callable[[Org, bytes], Awaitable[int]]


async def twilio_jpeg(org: Org, content: bytes) -> int:
    return await twilio_mms(org, (content, "image/jpeg"))


async def telegram_jpeg(org: Org, content: bytes) -> int:
    return await telegram_photo(org, content)


def rotate_cloud(p: Providers) -> None:
    p.cloud.access_token = "EAArotatedTOKEN"


def rotate_telegram(p: Providers) -> None:
    p.telegram.token = "123456:rotated"


def rotate_twilio(p: Providers) -> None:
    p.twilio.auth_token = "0" * 32


def forget_cloud(p: Providers) -> None:
    p.cloud.media.clear()


def forget_telegram(p: Providers) -> None:
    p.telegram.files.clear()


def forget_twilio(p: Providers) -> None:
    p.twilio.media.clear()


# provider: (an inbound JPEG, break our credentials at the fake, make it forget the media)
CASES: dict[str, tuple[Inbound, Callable[[Providers], None], Callable[[Providers], None]]] = {
    "whatsapp_cloud": (cloud_image, rotate_cloud, forget_cloud),
    "telegram": (telegram_jpeg, rotate_telegram, forget_telegram),
    "twilio": (twilio_jpeg, rotate_twilio, forget_twilio),
}


def served(p: Providers, provider: str) -> int:
    return {
        "whatsapp_cloud": p.cloud.media_served,
        "telegram": p.telegram.file_bytes_served,
        "twilio": p.twilio.media_served,
    }[provider]


async def start(make_client: MakeClient, clock: FakeClock, provider: str, **settings: Any) -> Org:
    return await Org.start(
        make_client, clock, cloud_whatsapp=provider == "whatsapp_cloud", **settings
    )


# -- the bytes ---------------------------------------------------------------------


async def test_whatsapp_cloud_image_is_fetched_with_the_token(
    make_client: MakeClient, clock: FakeClock
) -> None:
    org = await Org.start(make_client, clock, cloud_whatsapp=True)
    message_id = await cloud_image(org, JPEG)

    answer = await org.client.get(attachment_url(message_id))

    assert answer.status_code == 200, answer.text
    assert answer.content == JPEG
    assert answer.headers["content-type"] == "image/jpeg"
    assert answer.headers["content-disposition"] == "attachment"
    assert answer.headers["x-content-type-options"] == "nosniff"
    metadata, download = org.providers.cloud.media_requests
    assert metadata.url.host == "graph.test"
    assert metadata.url.params["phone_number_id"] == whatsapp_cloud_case.PHONE_NUMBER_ID
    assert download.url.host == org.providers.cloud.media_host
    bearer = f"Bearer {whatsapp_cloud_case.ACCESS_TOKEN}"
    assert [r.headers["authorization"] for r in (metadata, download)] == [bearer, bearer]


async def test_whatsapp_cloud_document_keeps_its_file_name(
    make_client: MakeClient, clock: FakeClock
) -> None:
    org = await Org.start(make_client, clock, cloud_whatsapp=True)
    media_id = org.providers.cloud.add_media(PDF, "application/pdf")
    data = json.loads(whatsapp_cloud_case.payload("document.json"))
    [message] = data["entry"][0]["changes"][0]["value"]["messages"]
    message["document"].update(id=media_id, filename='Liste "Süd".pdf')
    await org.deliver(whatsapp_cloud_case.signed_post(json.dumps(data).encode()))

    answer = await org.client.get(attachment_url((await only_inbound(org))["id"]))

    assert (answer.status_code, answer.content) == (200, PDF)
    assert answer.headers["content-type"] == "application/pdf"
    # Quotes and non-ASCII go percent-encoded (RFC 6266), never raw into the header.
    assert answer.headers["content-disposition"] == (
        "attachment; filename*=utf-8''Liste%20%22S%C3%BCd%22.pdf"
    )


async def test_telegram_photo_and_document_without_the_token_in_logs(
    make_client: MakeClient, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    org = await Org.start(make_client, clock)
    photo_id = await telegram_photo(org, JPEG)
    file_id = org.providers.telegram.add_file(PDF, kind="documents")
    document = telegram_case.load("document")
    document["message"]["document"].update(file_id=file_id, file_size=len(PDF))
    await org.deliver(telegram_case.post(document))
    document_id = (await only_inbound(org))["id"]

    photo = await org.client.get(attachment_url(photo_id))
    pdf = await org.client.get(attachment_url(document_id))

    assert (photo.status_code, photo.content) == (200, JPEG)
    # Telegram serves files as octet-stream; the type the Update gave wins.
    assert photo.headers["content-type"] == "image/jpeg"
    assert (pdf.status_code, pdf.content) == (200, PDF)
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["content-disposition"] == 'attachment; filename="turf-list.pdf"'
    downloads = org.providers.telegram.file_downloads
    assert [r.url.path for r in downloads] == [
        f"/file/bot{telegram_case.TOKEN}/photos/file_0.jpg",
        f"/file/bot{telegram_case.TOKEN}/documents/file_1.pdf",
    ]
    assert "/file/bot<redacted>/photos/file_0.jpg" in caplog.text  # httpx logged the GET
    assert telegram_case.TOKEN not in caplog.text


async def test_twilio_mms_media_behind_basic_auth_and_a_cdn_redirect(
    make_client: MakeClient, clock: FakeClock
) -> None:
    org = await Org.start(make_client, clock)
    message_id = await twilio_mms(org, (JPEG, "image/jpeg"), (PDF, "application/pdf"))

    first = await org.client.get(attachment_url(message_id, 0))
    second = await org.client.get(attachment_url(message_id, 1))

    assert (first.status_code, first.content, first.headers["content-type"]) == (
        200,
        JPEG,
        "image/jpeg",
    )
    assert (second.status_code, second.content, second.headers["content-type"]) == (
        200,
        PDF,
        "application/pdf",
    )
    api, cdn = org.providers.twilio.media_requests[:2]
    assert api.url.host == "api.twilio.test"
    assert api.headers["authorization"].startswith("Basic ")
    # The fake CDN refuses credentials; the account's token never leaves for it.
    assert cdn.url.host == "s3-external-1.amazonaws.com"
    assert "authorization" not in cdn.headers


# -- provider errors ---------------------------------------------------------------


@pytest.mark.parametrize("provider", sorted(CASES))
async def test_credentials_the_provider_refuses_answer_502(
    make_client: MakeClient, clock: FakeClock, caplog: pytest.LogCaptureFixture, provider: str
) -> None:
    inbound, rotate, _ = CASES[provider]
    org = await start(make_client, clock, provider)
    message_id = await inbound(org, JPEG)
    rotate(org.providers)

    answer = await org.client.get(attachment_url(message_id))

    assert answer.status_code == 502, answer.text
    assert "refused" in answer.json()["detail"]
    assert served(org.providers, provider) == 0
    assert "not served" in caplog.text  # the warning, without URLs or secrets
    for secret in (
        whatsapp_cloud_case.ACCESS_TOKEN,
        telegram_case.TOKEN,
        twilio_case.AUTH_TOKEN,
        "://",
    ):
        assert secret not in caplog.text


@pytest.mark.parametrize("provider", sorted(CASES))
async def test_media_the_provider_no_longer_has_answers_410(
    make_client: MakeClient, clock: FakeClock, provider: str
) -> None:
    inbound, _, forget = CASES[provider]
    org = await start(make_client, clock, provider)
    message_id = await inbound(org, JPEG)
    forget(org.providers)

    answer = await org.client.get(attachment_url(message_id))

    assert answer.status_code == 410, answer.text
    assert "no longer has" in answer.json()["detail"]


@pytest.mark.parametrize("provider", sorted(CASES))
async def test_media_over_the_limit_answers_413_unread(
    make_client: MakeClient, clock: FakeClock, provider: str
) -> None:
    inbound, _, _ = CASES[provider]
    org = await start(make_client, clock, provider, max_media_bytes=4096)
    message_id = await inbound(org, BIG)
    small_id = await inbound(org, JPEG[:4000])

    answer = await org.client.get(attachment_url(message_id))

    assert answer.status_code == 413, answer.text
    assert "over the limit of 4096" in answer.json()["detail"]
    # WhatsApp and Telegram declare the size first: nothing is downloaded. Twilio's CDN
    # streams without a length: the download stops one chunk past the limit.
    assert served(org.providers, provider) <= (5120 if provider == "twilio" else 0)
    assert (await org.client.get(attachment_url(small_id))).content == JPEG[:4000]


async def test_telegram_files_over_20_mb_answer_413(
    make_client: MakeClient, clock: FakeClock
) -> None:
    org = await Org.start(make_client, clock, max_media_bytes=64 * 1024 * 1024)
    message_id = await telegram_photo(org, b"\xff\xd8", size=25 * 1024 * 1024)

    answer = await org.client.get(attachment_url(message_id))

    assert answer.status_code == 413, answer.text
    assert "file is too big" in answer.json()["detail"].lower()


# -- what may be asked -------------------------------------------------------------


async def test_team_lead_outside_the_team_gets_404(
    make_client: MakeClient, clock: FakeClock
) -> None:
    org = await Org.start(make_client, clock, cloud_whatsapp=True)
    north = await org.team("North")
    await org.team("South")
    message_id = await cloud_image(org, JPEG)
    supporter_id = (await org.api("GET", f"/messages/{message_id}"))["supporter_id"]
    await org.api("PATCH", f"/supporters/{supporter_id}", json={"teams": ["South"]})
    lead = await org.key_for("team_lead", north["id"])

    outside = await org.client.get(attachment_url(message_id), headers=lead)
    await org.api("PATCH", f"/supporters/{supporter_id}", json={"teams": ["North"]})
    inside = await org.client.get(attachment_url(message_id), headers=lead)

    assert (outside.status_code, outside.json()["detail"]) == (404, "no such message")
    assert (inside.status_code, inside.content) == (200, JPEG)
    assert len(org.providers.cloud.media_requests) == 2  # only the allowed fetch went out


async def test_unknown_message_or_index_answers_404(
    make_client: MakeClient, clock: FakeClock
) -> None:
    org = await Org.start(make_client, clock, cloud_whatsapp=True)
    message_id = await cloud_image(org, JPEG)

    for path, detail in (
        (attachment_url(message_id, 1), "no such attachment"),
        (attachment_url(message_id, -1), "no such attachment"),
        (attachment_url(message_id + 100), "no such message"),
    ):
        answer = await org.client.get(path)
        assert (answer.status_code, answer.json()["detail"]) == (404, detail), path
    assert org.providers.cloud.media_requests == []


async def test_provider_no_longer_configured_answers_409(
    make_client: MakeClient, clock: FakeClock
) -> None:
    with_cloud = await Org.start(make_client, clock, cloud_whatsapp=True)
    message_id = await cloud_image(with_cloud, JPEG)
    # The same database, now served with WhatsApp over Twilio instead of the Cloud API.
    twilio_only = await Org.start(make_client, clock)

    answer = await twilio_only.client.get(attachment_url(message_id))

    assert answer.status_code == 409, answer.text
    assert "no configured whatsapp provider" in answer.json()["detail"]


async def test_email_attachment_bytes_are_not_kept(
    make_client: MakeClient, clock: FakeClock
) -> None:
    org = await Org.start(make_client, clock)
    event = InboundMessage(
        channel="email",
        address="amina@example.org",
        provider_message_id="<flyer@mail.example.org>",
        body="Flyer attached",
        attachments=(Attachment("application/pdf", filename="flyer.pdf", size=48213),),
    )
    [message_id] = (await ingest(org.ctx, [event])).stored

    answer = await org.client.get(attachment_url(message_id))

    assert answer.status_code == 404
    assert "not kept" in answer.json()["detail"]
