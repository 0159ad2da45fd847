"""Outbound media on one-on-ones and announcements, end to end through the provider fakes:
a `media_url` checked (http(s), size by HEAD, else a bounded GET) before anything is
queued; an upload (POST /api/v1/media) served to providers from the message's public
page; each channel sending it its own way (Twilio MediaUrl, MMS only to +1 numbers, the
WhatsApp Cloud API by link, Telegram sendPhoto / sendAudio / sendDocument, email as an
attachment)."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import func
from sqlmodel import select

from channels.email.fake import FakeSmtpServer
from storage.models import Message
from tests.conftest import FakeClock
from tests.e2e.harness import MakeClient, Org
from tests.gateway.media_case import start

PHONE = "+14155550155"
UK_PHONE = "+447911123456"
CHAT = 5550155
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
PAGE = r"https://rallypoint\.example\.org/m/[A-Za-z0-9_-]{20,}"


async def person(org: Org, *addresses: tuple[str, str], **fields: Any) -> dict[str, Any]:
    return await org.supporter(
        name="Lin",
        addresses=[{"channel": c, "address": a} for c, a in addresses],
        preferred_channels=[c for c, _ in addresses],
        **fields,
    )


async def send(org: Org, supporter: dict[str, Any], expect: int = 202, **body: Any) -> Any:
    body.setdefault("body", "The flyer")
    return await org.api("POST", f"/supporters/{supporter['id']}/messages", expect, json=body)


async def upload(org: Org, content: bytes, name: str, kind: str) -> int:
    made = await org.api("POST", "/media", 201, files={"file": (name, content, kind)})
    assert (made["size"], made["content_type"], made["filename"]) == (len(content), kind, name)
    return int(made["id"])


async def messages(org: Org) -> int:
    async with org.ctx.sessions() as session:
        return int((await session.exec(select(func.count()).select_from(Message))).one())


async def test_a_media_url_is_checked_before_anything_is_queued(
    make_client: MakeClient, clock: FakeClock
) -> None:
    org, media = await start(make_client, clock, max_outbound_media_bytes=1000)
    media.files["/big.jpg"] = ("image/jpeg", 5000)
    media.files["/big-no-head.jpg"] = ("image/jpeg", 5000)
    media.no_head.add("/big-no-head.jpg")
    media.files["/ok.jpg"] = ("image/jpeg", 800)
    lin = await person(org, ("telegram", str(CHAT)))
    for url, why in (
        ("ftp://media.example.test/ok.jpg", "http or https"),
        ("javascript:alert(1)", "http or https"),
        (media.url("/big.jpg"), "over the limit of 1000"),
        (media.url("/big-no-head.jpg"), "over the limit of 1000"),
        (media.url("/missing.jpg"), "HTTP 404"),
    ):
        for path in (f"/supporters/{lin['id']}/messages", "/announcements"):
            answer = await org.client.post(
                "/api/v1" + path,
                json={"body": "x", "media_url": url, "audience": {"all": True}},
            )
            assert answer.status_code == 422, (url, answer.text)
            [error] = answer.json()["errors"]
            assert error["field"] == "body.media_url" and why in error["message"], error
    assert await messages(org) == 0
    both = await org.client.post(
        f"/api/v1/supporters/{lin['id']}/messages",
        json={"body": "x", "media_url": media.url("/ok.jpg"), "media_id": 1},
    )
    assert both.status_code == 422
    unknown = await org.client.post(
        f"/api/v1/supporters/{lin['id']}/messages", json={"body": "x", "media_id": 999}
    )
    assert unknown.json()["errors"][0]["field"] == "body.media_id"

    # An upload over the limit: refused as it arrives (past the form's framing) or once read.
    for size in (1001, 100_000):
        refused = await org.client.post(
            "/api/v1/media", files={"file": ("a.bin", b"x" * size, "application/octet-stream")}
        )
        assert refused.status_code == 413, size
        assert "over the limit of 1000 bytes" in refused.text
    sent = await send(org, lin, media_url=media.url("/ok.jpg"))
    assert sent["attachments"] == [
        {"url": media.url("/ok.jpg"), "content_type": "image/jpeg", "size": 800}
    ]
    await org.dispatch()
    assert org.providers.telegram_to(CHAT) == ["The flyer", f"[photo] {media.url('/ok.jpg')}"]


async def test_private_hosts_are_refused(make_client: MakeClient, clock: FakeClock) -> None:
    org, _ = await start(make_client, clock, allow_private_webhooks=False)
    lin = await person(org, ("telegram", str(CHAT)))
    answer = await org.client.post(
        f"/api/v1/supporters/{lin['id']}/messages",
        json={"body": "x", "media_url": "http://127.0.0.1:8080/secret.png"},
    )
    assert answer.status_code == 422
    assert "loopback, private" in answer.json()["errors"][0]["message"]


async def test_an_upload_goes_to_each_channel_its_own_way(
    make_client: MakeClient, clock: FakeClock
) -> None:
    org, _ = await start(make_client, clock, cloud_whatsapp=True)
    too_big = await org.client.post(
        "/api/v1/media",
        files={"file": ("huge.bin", b"x" * (5 * 1024 * 1024 + 1), "application/octet-stream")},
    )
    assert too_big.status_code == 413
    poster = await upload(org, PNG, "poster.png", "image/png")
    song = await upload(org, b"ID3" + b"\x00" * 40, "chant.mp3", "audio/mpeg")
    page = await upload(org, b"<html><script>alert(1)</script></html>", "x.html", "text/html")

    tg = await person(org, ("telegram", str(CHAT)))
    await send(org, tg, media_id=poster)
    await send(org, tg, media_id=song, body="Our chant")
    await send(org, tg, media_id=page, body="A page")
    us = await person(org, ("sms", PHONE))
    await send(org, us, media_id=poster)
    uk = await person(org, ("sms", UK_PHONE))
    await send(org, uk, media_id=poster)
    wa = await person(org, ("whatsapp", "+14155550156"))
    await org.cloud_whatsapp("+14155550156", "hi")  # opens the 24 h window
    await send(org, wa, media_id=poster)
    await org.dispatch()

    sent = org.providers.telegram_to(CHAT)
    assert sent[0] == "The flyer" and re.fullmatch(rf"\[photo\] {PAGE}/media/0", sent[1]), sent
    assert sent[2] == "Our chant" and re.fullmatch(rf"\[audio\] {PAGE}/media/0", sent[3]), sent
    assert re.fullmatch(rf"\[document\] {PAGE}/media/0", sent[5]), sent

    [mms] = [r for r in org.providers.twilio.requests if r.get("To") == PHONE]
    [media_url] = mms.form.get("MediaUrl") or []
    assert re.fullmatch(rf"{PAGE}/media/0", media_url) and mms.get("Body") == "The flyer"
    [sms] = [r for r in org.providers.twilio.requests if r.get("To") == UK_PHONE]
    assert sms.form.get("MediaUrl") is None  # no MMS outside the US and Canada
    assert re.fullmatch(rf"The flyer\n{PAGE}/media/0", sms.get("Body") or "")

    [cloud] = [r.json for r in org.providers.cloud.accepted if r.json.get("type") == "image"]
    assert cloud["image"]["caption"] == "The flyer"
    assert re.fullmatch(rf"{PAGE}/media/0", cloud["image"]["link"])

    # What the providers fetch: the file itself, an image inline, HTML only as a download.
    image = await org.client.get(media_url.removeprefix("https://rallypoint.example.org"))
    assert (image.status_code, image.content, image.headers["content-type"]) == (
        200,
        PNG,
        "image/png",
    )
    assert image.headers["content-disposition"] == 'inline; filename="poster.png"'
    risky = await org.client.get(
        sent[5].split("] ")[1].removeprefix("https://rallypoint.example.org")
    )
    assert risky.headers["content-type"] == "application/octet-stream"
    assert risky.headers["content-disposition"].startswith("attachment;")
    assert "sandbox" in risky.headers["content-security-policy"]
    assert (
        await org.client.get(
            media_url.replace("/media/0", "/media/1").removeprefix("https://rallypoint.example.org")
        )
    ).status_code == 404


async def test_email_carries_the_file_as_an_attachment(
    make_client: MakeClient, clock: FakeClock
) -> None:
    with FakeSmtpServer() as smtp:
        org, _ = await start(
            make_client,
            clock,
            smtp_host="127.0.0.1",
            smtp_port=smtp.port,
            smtp_from="Rally Team <team@rally.example.org>",
            smtp_starttls=False,
        )
        poster = await upload(org, PNG, "poster.png", "image/png")
        lin = await person(org, ("email", "lin@example.org"))
        await send(org, lin, media_id=poster, body="See the poster")
        await org.dispatch()
        [mail] = smtp.messages
    [attachment] = list(mail.message.iter_attachments())
    assert attachment.get_filename() == "poster.png"
    assert attachment.get_content_type() == "image/png"
    assert attachment.get_content() == PNG
    assert "See the poster" in (mail.message.get_body(("plain",)) or mail.message).get_content()


async def test_an_announcement_with_media(make_client: MakeClient, clock: FakeClock) -> None:
    org, media = await start(make_client, clock)
    media.files["/flyer.pdf"] = ("application/pdf", 3000)
    await org.team("Canvassing")
    await person(org, ("telegram", str(CHAT)), teams=["Canvassing"])
    await person(org, ("sms", PHONE), teams=["Canvassing"])
    made = await org.api(
        "POST",
        "/announcements",
        202,
        json={
            "body": "Saturday's flyer",
            "audience": {"teams": ["Canvassing"]},
            "media_url": media.url("/flyer.pdf"),
        },
    )
    assert made["attachments"][0]["url"] == media.url("/flyer.pdf")
    await org.dispatch()
    assert org.providers.telegram_to(CHAT) == [
        "Saturday's flyer",
        f"[document] {media.url('/flyer.pdf')}",
    ]
    [mms] = [r for r in org.providers.twilio.requests if r.get("To") == PHONE]
    assert mms.form.get("MediaUrl") == [media.url("/flyer.pdf")]
