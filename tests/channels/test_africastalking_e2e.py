"""Africa's Talking end to end, through its wire fake: an incoming SMS at the secret
callback URL makes a supporter and a conversation; replies go out by the route for the
number's country (Kenya by Africa's Talking, the US by Twilio) and record which provider
sent them; delivery reports move statuses; STOP, 406 (blacklist) and 405 (no balance)
do what they mean; a wrong secret stores nothing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
from sqlalchemy import func
from sqlmodel import select

from channels.africastalking.fake import FakeAfricasTalking, Reply
from channels.telegram.fake import FakeTelegramApi
from channels.twilio.fake import FakeTwilio
from routing.dispatch.dispatcher import Dispatcher
from storage.models import Message, Supporter
from tests.channels import telegram_case, twilio_case
from tests.channels.africastalking_case import (
    API_KEY,
    SECRET,
    SENDER_ID,
    SETTINGS,
    SHORT_CODE,
    USERNAME,
    callback,
)
from tests.channels.send_contract import all_logs, leaked
from tests.conftest import bearer, new_key

ClientFactory = Callable[..., Awaitable[httpx.AsyncClient]]
KENYA = "+254711000111"
US = "+14155550100"
CHAT = "777000111"
ROUTES = "KE,UG,NG:africastalking;*:twilio"


class Providers:
    """Africa's Talking, Twilio and Telegram fakes behind one transport, by host."""

    def __init__(self) -> None:
        self.at = FakeAfricasTalking(USERNAME, API_KEY)
        self.twilio = FakeTwilio(twilio_case.ACCOUNT_SID, twilio_case.AUTH_TOKEN)
        self.telegram = FakeTelegramApi(telegram_case.TOKEN)

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == "api.africastalking.test":
            return await self.at(request)
        if request.url.host == "api.twilio.test":
            return await self.twilio(request)
        return self.telegram.handler(request)


async def _start(
    make_client: ClientFactory, **overrides: Any
) -> tuple[httpx.AsyncClient, Providers]:
    providers = Providers()
    client = await make_client(
        transport=httpx.MockTransport(providers),
        **SETTINGS,
        **twilio_case.SETTINGS,
        **telegram_case.SETTINGS,
        **{"sms_routes": ROUTES, **overrides},
    )
    client.headers.update(bearer(await new_key(client.ctx)))  # type: ignore[attr-defined]
    return client, providers


async def _post(
    client: httpx.AsyncClient, form: dict[str, str], kind: str = "", secret: str = SECRET
) -> httpx.Response:
    request = callback(form, kind, secret)
    return await client.post(request.path, headers=request.headers, content=request.content)


async def _supporter(client: httpx.AsyncClient, *addresses: tuple[str, str]) -> int:
    answer = await client.post(
        "/api/v1/supporters",
        json={
            "name": "Wanjiru",
            "addresses": [{"channel": c, "address": a} for c, a in addresses],
            "preferred_channels": [c for c, _ in addresses],
        },
    )
    assert answer.status_code == 201, answer.text
    supporter_id: int = answer.json()["id"]
    return supporter_id


async def _send(client: httpx.AsyncClient, supporter_id: int, body: str) -> int:
    queued = await client.post(f"/api/v1/supporters/{supporter_id}/messages", json={"body": body})
    assert queued.status_code == 202, queued.text
    await Dispatcher(client.ctx).run_until_idle()  # type: ignore[attr-defined]
    message_id: int = queued.json()["id"]
    return message_id


async def _message(client: httpx.AsyncClient, message_id: int) -> dict[str, Any]:
    answer = await client.get(f"/api/v1/messages/{message_id}")
    assert answer.status_code == 200
    data: dict[str, Any] = answer.json()
    return data


async def _count(client: httpx.AsyncClient, model: type) -> int:
    async with client.ctx.sessions() as session:  # type: ignore[attr-defined]
        return (await session.exec(select(func.count()).select_from(model))).one()


async def test_inbound_sms_reply_and_delivery_reports(make_client: ClientFactory) -> None:
    with all_logs() as records:
        await _inbound_reply_and_reports(make_client)
    # No secret, number or message text in any record, at any level, of any logger but the
    # database's own echo of rows (SQLAlchemy's DEBUG, which this capture turns on).
    texts = [SECRET, API_KEY, KENYA, "Habari! Count me in.", "Asante! See you Saturday"]
    ours = [r for r in records if not r.name.startswith(("sqlalchemy", "aiosqlite"))]
    assert not leaked(ours, texts)


async def _inbound_reply_and_reports(make_client: ClientFactory) -> None:
    client, providers = await _start(make_client)
    form = providers.at.inbound_form(KENYA, SHORT_CODE, "Habari! Count me in.", "at-in-1")
    first, replay = await _post(client, form), await _post(client, form)
    assert (first.status_code, first.text, replay.status_code) == (200, "", 200)

    [convo] = (await client.get("/api/v1/conversations")).json()["items"]
    supporter = (await client.get(f"/api/v1/supporters/{convo['supporter_id']}")).json()
    assert [(a["channel"], a["address"]) for a in supporter["addresses"]] == [("sms", KENYA)]
    [inbound] = (await client.get(f"/api/v1/conversations/{convo['id']}/messages")).json()["items"]
    assert (inbound["direction"], inbound["channel"], inbound["body"]) == (
        "inbound",
        "sms",
        "Habari! Count me in.",
    )

    reply_id = await _send(client, supporter["id"], "Asante! See you Saturday")
    [sent] = providers.at.sent
    assert sent.form == {
        "username": USERNAME,
        "to": KENYA,
        "message": "Asante! See you Saturday",
        "from": SENDER_ID,
    }
    assert sent.request.headers["apikey"] == API_KEY
    assert sent.request.headers["accept"] == "application/json"
    assert providers.twilio.sent == []
    message = await _message(client, reply_id)
    assert (message["status"], message["provider_message_id"]) == ("sent", sent.message_id)
    assert [a["provider"] for a in message["attempts"]] == ["africastalking"]

    assert sent.message_id is not None
    for status, expected in (("Buffered", "sent"), ("Success", "delivered"), ("Sent", "delivered")):
        answer = await _post(
            client, providers.at.delivery_form(sent.message_id, status), "delivery"
        )
        assert answer.status_code == 200, answer.text
        assert (await _message(client, reply_id))["status"] == expected


async def test_a_wrong_or_missing_secret_is_403_and_stores_nothing(
    make_client: ClientFactory,
) -> None:
    client, providers = await _start(make_client)
    form = providers.at.inbound_form(KENYA, SHORT_CODE, "hello")
    for secret in ("cb-not-the-s3cret-Hh3u", SECRET[:-1], SECRET + "0"):
        assert (await _post(client, form, secret=secret)).status_code == 403
    no_secret = await client.post(
        "/webhooks/africastalking",
        content=urlencode(form).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert no_secret.status_code == 403
    # The secret is checked before the body is read: an unreadable form or one over the
    # size limit (400 and 413 with the right secret) is 403 too.
    for secret, body, status in (
        ("cb-not-the-s3cret-Hh3u", b"text=%FF%FE&\xff", 403),
        ("cb-not-the-s3cret-Hh3u", b"x" * 2_000_000, 403),
        (SECRET, b"x" * 2_000_000, 413),
    ):
        answer = await client.post(
            f"/webhooks/africastalking/{secret}/delivery",
            content=body,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert answer.status_code == status
    assert await _count(client, Message) == 0
    assert await _count(client, Supporter) == 0

    supporter_id = await _supporter(client, ("sms", KENYA))
    reply_id = await _send(client, supporter_id, "hello")
    [sent] = providers.at.sent
    assert sent.message_id is not None
    report = providers.at.delivery_form(sent.message_id, "Failed", "UserInBlackList")
    assert (await _post(client, report, "delivery", "cb-not-the-s3cret-Hh3u")).status_code == 403
    assert (await _message(client, reply_id))["status"] == "sent"
    supporter = (await client.get(f"/api/v1/supporters/{supporter_id}")).json()
    assert supporter["opted_out"] is False


async def test_the_callbacks_answer_404_when_africas_talking_is_off(
    make_client: ClientFactory,
) -> None:
    client = await make_client(**twilio_case.SETTINGS)
    form = FakeAfricasTalking(USERNAME, API_KEY).inbound_form(KENYA, SHORT_CODE, "hello")
    assert (await _post(client, form)).status_code == 404
    assert (await _post(client, {"id": "x", "status": "Success"}, "delivery")).status_code == 404


async def test_stop_opts_out_and_is_confirmed_over_africas_talking(
    make_client: ClientFactory,
) -> None:
    client, providers = await _start(make_client)
    assert (
        await _post(client, providers.at.inbound_form(KENYA, SHORT_CODE, "Stop"))
    ).status_code == 200
    [convo] = (await client.get("/api/v1/conversations")).json()["items"]
    supporter = (await client.get(f"/api/v1/supporters/{convo['supporter_id']}")).json()
    assert supporter["opted_out"] is True
    await Dispatcher(client.ctx).run_until_idle()  # type: ignore[attr-defined]
    # Africa's Talking answers no keyword itself, so we confirm (Twilio would have).
    [confirmation] = providers.at.sent
    assert confirmation.get("message") == client.ctx.settings.opt_out_text  # type: ignore[attr-defined]
    # Nothing else goes to them now.
    queued = await client.post(
        f"/api/v1/supporters/{supporter['id']}/messages", json={"body": "hi"}
    )
    assert queued.status_code == 409
    await Dispatcher(client.ctx).run_until_idle()  # type: ignore[attr-defined]
    assert len(providers.at.sent) == 1


async def test_406_user_in_blacklist_opts_the_supporter_out(make_client: ClientFactory) -> None:
    client, providers = await _start(make_client)
    supporter_id = await _supporter(client, ("sms", KENYA), ("telegram", CHAT))
    providers.at.script(KENYA, Reply.recipient(406))
    message_id = await _send(client, supporter_id, "Phone bank tonight?")
    message = await _message(client, message_id)
    assert message["status"] == "failed"
    assert message["attempts"][0]["provider"] == "africastalking"
    assert message["error_code"] == "406"
    assert message["attempts"][0]["error"] == "africastalking 406: UserInBlacklist"
    supporter = (await client.get(f"/api/v1/supporters/{supporter_id}")).json()
    assert supporter["opted_out"] is True
    assert providers.telegram.sent == {}  # an opt-out is not a reason to try elsewhere


async def test_405_insufficient_balance_falls_back(make_client: ClientFactory) -> None:
    client, providers = await _start(make_client)
    supporter_id = await _supporter(client, ("sms", KENYA), ("telegram", CHAT))
    providers.at.script(KENYA, Reply.recipient(405))
    message_id = await _send(client, supporter_id, "Phone bank tonight?")
    await Dispatcher(client.ctx).run_until_idle()  # type: ignore[attr-defined]
    message = await _message(client, message_id)
    assert (message["channel"], message["status"]) == ("telegram", "sent")
    assert providers.telegram.sent[CHAT] == ["Phone bank tonight?"]
    first = message["attempts"][0]
    assert (first["channel"], first["provider"], first["status"]) == (
        "sms",
        "africastalking",
        "failed",
    )
    assert "InsufficientBalance" in first["error"]
    supporter = (await client.get(f"/api/v1/supporters/{supporter_id}")).json()
    assert supporter["opted_out"] is False


async def test_a_failed_delivery_report_falls_back(make_client: ClientFactory) -> None:
    client, providers = await _start(make_client)
    supporter_id = await _supporter(client, ("sms", KENYA), ("telegram", CHAT))
    message_id = await _send(client, supporter_id, "Meeting moved to 6pm")
    [sent] = providers.at.sent
    assert sent.message_id is not None
    report = providers.at.delivery_form(sent.message_id, "Rejected", "UserDoesNotExist")
    assert (await _post(client, report, "delivery")).status_code == 200
    moved = await _message(client, message_id)
    assert (moved["channel"], moved["status"]) == ("telegram", "queued")
    assert any("UserDoesNotExist" in (e["error"] or "") for e in moved["history"])
    await Dispatcher(client.ctx).run_until_idle()  # type: ignore[attr-defined]
    assert providers.telegram.sent[CHAT] == ["Meeting moved to 6pm"]


async def test_a_kenyan_number_goes_by_africas_talking_and_a_us_number_by_twilio(
    make_client: ClientFactory,
) -> None:
    client, providers = await _start(make_client)
    kenyan = await _supporter(client, ("sms", KENYA))
    american = await _supporter(client, ("sms", US))
    to_kenya = await _send(client, kenyan, "Habari")
    to_us = await _send(client, american, "Hello")
    assert [s.get("to") for s in providers.at.sent] == [KENYA]
    assert [s.get("To") for s in providers.twilio.sent] == [US]
    kenya_message, us_message = await _message(client, to_kenya), await _message(client, to_us)
    assert kenya_message["attempts"][0]["provider"] == "africastalking"
    assert us_message["attempts"][0]["provider"] == "twilio"

    # Each provider's delivery callback finds its own attempt by its provider id.
    [at_sent], [twilio_sent] = providers.at.sent, providers.twilio.sent
    assert at_sent.message_id is not None and twilio_sent.sid is not None
    report = providers.at.delivery_form(at_sent.message_id, "Success")
    assert (await _post(client, report, "delivery")).status_code == 200
    url, params, headers = providers.twilio.status_callback(twilio_sent.sid, "undelivered", 30003)
    answer = await client.post(
        urlsplit(url).path,
        content=urlencode(params).encode(),
        headers={**headers, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 200
    assert (await _message(client, to_kenya))["status"] == "delivered"
    assert (await _message(client, to_us))["status"] in ("undelivered", "failed")


async def test_without_a_route_everything_goes_by_twilio(make_client: ClientFactory) -> None:
    client, providers = await _start(make_client, sms_routes="*:twilio")
    supporter_id = await _supporter(client, ("sms", KENYA))
    message_id = await _send(client, supporter_id, "Habari")
    assert providers.at.sent == [] and len(providers.twilio.sent) == 1
    assert (await _message(client, message_id))["attempts"][0]["provider"] == "twilio"
