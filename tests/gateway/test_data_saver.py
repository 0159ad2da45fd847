"""Data-saver supporters, end to end through the provider fakes: the field in the API, CSV
and console; LITE and FULL on any channel with a confirmation; SMS first; long texts as
one concise SMS with a link to the full message's public page (escaped, no login, gone
with retention); media as that link instead of a file."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

from routing.organizing.data_saver import CONFIRM_OFF, CONFIRM_ON
from tests.conftest import FakeClock
from tests.console.test_console_http import add_user, csrf_of, sign_in
from tests.e2e.harness import MakeClient, Org
from tests.gateway.media_case import start

PHONE = "+14155550166"
CHAT = 5550166
LONG = (
    "Big news for the canvass: we meet Saturday at 10am at the library, bring water, a hat "
    "and your phone charged. <script>alert(1)</script> We will split into teams of two & "
    "cover the east side first, then lunch together at noon."
)


async def tomas(org: Org, **fields: Any) -> dict[str, Any]:
    return await org.supporter(
        name="Tomas",
        addresses=[
            {"channel": "telegram", "address": str(CHAT)},
            {"channel": "sms", "address": PHONE},
        ],
        preferred_channels=["telegram", "sms"],
        **fields,
    )


def link_in(text: str) -> str:
    found = re.search(r"https://rallypoint\.example\.org(/m/[A-Za-z0-9_-]{20,})", text)
    assert found, text
    return found.group(1)


async def test_the_field_in_the_api_and_csv(make_client: MakeClient, clock: FakeClock) -> None:
    org = await Org.start(make_client, clock)
    plain = await org.supporter(
        name="Ann", addresses=[{"channel": "email", "address": "ann@example.org"}]
    )
    assert plain["data_saver"] is False
    saver = await tomas(org, data_saver=True)
    assert saver["data_saver"] is True
    assert (await org.api("GET", f"/supporters/{saver['id']}"))["data_saver"] is True
    patched = await org.api("PATCH", f"/supporters/{saver['id']}", json={"data_saver": False})
    assert patched["data_saver"] is False
    bad = await org.client.patch(f"/api/v1/supporters/{saver['id']}", json={"data_saver": "x"})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "body.data_saver"

    upload = "name,phone,data_saver\nBea,+14155550167,true\nCy,+14155550168,maybe\n"
    summary = await org.api(
        "POST", "/supporters/import", files={"file": ("s.csv", upload.encode(), "text/csv")}
    )
    assert summary["created"] == 1
    assert summary["rejected"] == [{"row": 2, "reason": "data_saver: give true or false"}]
    exported = await org.client.get("/api/v1/supporters/export")
    rows = {r["name"]: r for r in csv.DictReader(io.StringIO(exported.text))}
    assert (rows["Bea"]["data_saver"], rows["Ann"]["data_saver"]) == ("true", "false")


async def test_lite_and_full_on_any_channel_with_a_confirmation(
    make_client: MakeClient, clock: FakeClock
) -> None:
    org = await Org.start(make_client, clock)
    supporter = await tomas(org)
    await org.telegram(CHAT, "Lite!")
    await org.dispatch()
    assert (await org.api("GET", f"/supporters/{supporter['id']}"))["data_saver"] is True
    assert org.providers.telegram_to(CHAT) == [CONFIRM_ON]
    await org.sms(PHONE, " full ")
    await org.dispatch()
    assert (await org.api("GET", f"/supporters/{supporter['id']}"))["data_saver"] is False
    assert org.providers.sms_to(PHONE) == [CONFIRM_OFF]
    await org.sms(PHONE, "lite please")  # not the whole message: just a message
    assert (await org.api("GET", f"/supporters/{supporter['id']}"))["data_saver"] is False


async def test_sms_comes_first_and_a_long_text_is_one_segment_with_a_link(
    make_client: MakeClient, clock: FakeClock
) -> None:
    org = await Org.start(make_client, clock)
    supporter = await tomas(org, data_saver=True)
    sent = await org.api(
        "POST", f"/supporters/{supporter['id']}/messages", 202, json={"body": LONG}
    )
    assert sent["channel"] == "sms"  # telegram is preferred, but data saver puts SMS first
    await org.dispatch()
    [text] = org.providers.sms_to(PHONE)
    assert text.startswith("Big news for the canvass") and len(text) <= 160
    assert text.isascii()
    [request] = org.providers.twilio.requests
    assert request.get("MediaUrl") is None

    page = await org.client.get(link_in(text), headers={"Authorization": ""})
    assert page.status_code == 200
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text and "<script>" not in page.text
    assert "teams of two &amp; cover the east side" in page.text
    assert page.headers["cache-control"] == "private, no-store"
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert (await org.client.get("/m/" + "x" * 32)).status_code == 404

    # A short text goes as it is, with no link.
    await org.api("POST", f"/supporters/{supporter['id']}/messages", 202, json={"body": "Hi!"})
    await org.dispatch()
    assert org.providers.sms_to(PHONE)[-1] == "Hi!"


async def test_a_long_text_elsewhere_and_the_page_expires_with_retention(
    make_client: MakeClient, clock: FakeClock
) -> None:
    org = await Org.start(make_client, clock, retention_days=30)
    supporter = await tomas(org, data_saver=True)
    body = "word " * 200
    await org.api(
        "POST",
        f"/supporters/{supporter['id']}/messages",
        202,
        json={"body": body, "channel": "telegram"},
    )
    await org.dispatch()
    [text] = org.providers.telegram_to(CHAT)
    assert len(text) <= 320 and text.startswith("word word")
    path = link_in(text)
    assert "word " * 150 in (await org.client.get(path)).text
    clock.advance(days=31)
    assert (await org.client.get(path)).status_code == 404


async def test_media_go_as_a_link_to_a_data_saver(
    make_client: MakeClient, clock: FakeClock
) -> None:
    org, media = await start(make_client, clock)
    media.files["/poster.jpg"] = ("image/jpeg", 2048)
    supporter = await tomas(org, data_saver=True)
    await org.api(
        "POST",
        f"/supporters/{supporter['id']}/messages",
        202,
        json={"body": "The poster", "media_url": media.url("/poster.jpg")},
    )
    await org.dispatch()
    [request] = org.providers.twilio.requests
    assert request.get("MediaUrl") is None  # no MMS for a data saver
    text = request.get("Body") or ""
    assert text.startswith("The poster\nhttps://rallypoint.example.org/m/")
    page = await org.client.get(link_in(text))
    assert "The poster" in page.text
    file = await org.client.get(link_in(text) + "/media/0")
    assert (file.status_code, file.headers["location"]) == (302, media.url("/poster.jpg"))


async def test_the_console_edit_page_sets_it(make_client: MakeClient, clock: FakeClock) -> None:
    org = await Org.start(make_client, clock)
    supporter = await tomas(org)
    await add_user(org.client)
    assert (await sign_in(org.client)).status_code == 303
    form = await org.client.get(f"/console/supporters/{supporter['id']}/edit")
    assert 'name="data_saver"' in form.text and "Data saver" in form.text
    saved = await org.client.post(
        f"/console/supporters/{supporter['id']}/edit",
        data={
            "csrf_token": csrf_of(form.text),
            "name": "Tomas",
            "telegram": str(CHAT),
            "phone": PHONE,
            "preferred_channels": "telegram, sms",
            "data_saver": "on",
        },
    )
    assert saved.status_code == 303, saved.text
    assert (await org.api("GET", f"/supporters/{supporter['id']}"))["data_saver"] is True
    profile = await org.client.get(f"/console/supporters/{supporter['id']}")
    assert "<dt>Data saver</dt><dd>On" in profile.text
