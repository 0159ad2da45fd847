"""Fallback on silence (`fallback_after`), end to end through the provider fakes on the
injected clock: a message not delivered or read by its deadline is sent once more over the
supporter's next channel, once only (concurrent scans, a restart); one delivered in time is
not; a message still waiting to go out keeps waiting; bad spans are 422 naming the field;
the announcement report counts who was reached on the second channel."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from sqlalchemy import func
from sqlmodel import select

from gateway.background import background_services
from routing.dispatch.silence import SilenceFallback, fall_back_on_silence
from storage.models import OutboxItem
from tests.conftest import FakeClock, bearer, new_key
from tests.console.test_console_http import add_user, sign_in
from tests.e2e.harness import MakeClient, Org, settings_for

PHONE = "+14155550177"
OTHER_PHONE = "+14155550178"
CHAT = 5550177
OTHER_CHAT = 5550178


async def telegram_then_sms(org: Org, phone: str = PHONE, chat: int = CHAT) -> dict[str, Any]:
    return await org.supporter(
        name="Tomas",
        addresses=[
            {"channel": "telegram", "address": str(chat)},
            {"channel": "sms", "address": phone},
        ],
        preferred_channels=["telegram", "sms"],
        teams=["Canvassing"],
    )


async def sms_then_telegram(org: Org, phone: str = OTHER_PHONE, chat: int = OTHER_CHAT) -> Any:
    return await org.supporter(
        name="Sara",
        addresses=[
            {"channel": "sms", "address": phone},
            {"channel": "telegram", "address": str(chat)},
        ],
        preferred_channels=["sms", "telegram"],
        teams=["Canvassing"],
    )


async def twilio_status(org: Org, sid: str, status: str) -> None:
    url, params, headers = org.providers.twilio.status_callback(sid, status)
    answer = await org.client.post(httpx.URL(url).path, data=params, headers={**headers})
    assert answer.status_code == 200, answer.text


async def one_on_one(org: Org, supporter_id: int, **body: Any) -> dict[str, Any]:
    sent: dict[str, Any] = await org.api(
        "POST", f"/supporters/{supporter_id}/messages", 202, json=body
    )
    return sent


async def test_a_silent_one_on_one_is_sent_once_more_over_the_next_channel(
    make_client: MakeClient, clock: FakeClock
) -> None:
    org = await Org.start(make_client, clock)
    await org.team("Canvassing")
    tomas = await telegram_then_sms(org)
    sent = await one_on_one(org, tomas["id"], body="Call tonight at 7?", fallback_after="6h")
    assert sent["channel"] == "telegram"
    assert sent["fallback_at"] is not None
    await org.dispatch()
    assert org.providers.telegram_to(CHAT) == ["Call tonight at 7?"]

    clock.advance(hours=5, minutes=59)
    assert await fall_back_on_silence(org.ctx) == 0  # not yet
    clock.advance(minutes=1)
    assert await fall_back_on_silence(org.ctx) == 1
    await org.dispatch()
    assert org.providers.sms_to(PHONE) == ["Call tonight at 7?"]

    detail = await org.api("GET", f"/messages/{sent['id']}")
    assert (detail["channel"], detail["status"], detail["fallback_from"]) == (
        "sms",
        "sent",
        "telegram",
    )
    assert detail["fallback_at"] is None
    assert [(a["channel"], a["status"]) for a in detail["attempts"]] == [
        ("telegram", "sent"),
        ("sms", "sent"),
    ]
    assert any("no delivery on telegram within 6h" in (e["error"] or "") for e in detail["history"])

    # Once only: more silence on SMS sends nothing more.
    clock.advance(days=2)
    assert await fall_back_on_silence(org.ctx) == 0
    await org.dispatch()
    assert org.providers.telegram_to(CHAT) == ["Call tonight at 7?"]
    assert org.providers.sms_to(PHONE) == ["Call tonight at 7?"]


async def test_a_message_delivered_before_its_deadline_is_not_sent_again(
    make_client: MakeClient, clock: FakeClock
) -> None:
    org = await Org.start(make_client, clock)
    await org.team("Canvassing")
    sara = await sms_then_telegram(org)
    sent = await one_on_one(org, sara["id"], body="See you Saturday", fallback_after="90s")
    await org.dispatch()
    [request] = org.providers.twilio.requests
    assert request.sid is not None
    clock.advance(seconds=30)
    await twilio_status(org, request.sid, "delivered")
    detail = await org.api("GET", f"/messages/{sent['id']}")
    assert (detail["status"], detail["fallback_at"]) == ("delivered", None)

    clock.advance(hours=1)
    assert await fall_back_on_silence(org.ctx) == 0
    await org.dispatch()
    assert org.providers.telegram_to(OTHER_CHAT) == []


async def test_a_delivery_the_scan_has_not_seen_yet_still_stops_the_fallback(
    make_client: MakeClient, clock: FakeClock
) -> None:
    """A message read on time, whose deadline the scan reaches later, is left alone."""
    org = await Org.start(make_client, clock)
    await org.team("Canvassing")
    sara = await sms_then_telegram(org)
    await one_on_one(org, sara["id"], body="Thanks!", fallback_after="1m")
    await org.dispatch()
    [request] = org.providers.twilio.requests
    assert request.sid is not None
    await twilio_status(org, request.sid, "sent")
    await twilio_status(org, request.sid, "read")
    clock.advance(minutes=5)
    assert await fall_back_on_silence(org.ctx) == 0
    assert org.providers.telegram_to(OTHER_CHAT) == []


async def test_a_message_still_waiting_to_go_out_keeps_its_first_channel(
    make_client: MakeClient, clock: FakeClock
) -> None:
    org = await Org.start(make_client, clock)
    await org.team("Canvassing")
    tomas = await telegram_then_sms(org)
    sent = await one_on_one(org, tomas["id"], body="Hello", fallback_after="10m")
    clock.advance(minutes=11)  # never dispatched: still queued on telegram
    assert await fall_back_on_silence(org.ctx) == 0
    detail = await org.api("GET", f"/messages/{sent['id']}")
    assert (detail["channel"], detail["status"]) == ("telegram", "queued")
    assert detail["fallback_at"] is not None  # the silence counts from its send
    await org.dispatch()
    assert org.providers.telegram_to(CHAT) == ["Hello"]
    clock.advance(minutes=10)
    assert await fall_back_on_silence(org.ctx) == 1
    await org.dispatch()
    assert org.providers.sms_to(PHONE) == ["Hello"]


async def test_concurrent_scans_and_a_restart_send_it_once(
    make_client: MakeClient, clock: FakeClock
) -> None:
    org = await Org.start(make_client, clock)
    await org.team("Canvassing")
    tomas = await telegram_then_sms(org)
    await one_on_one(org, tomas["id"], body="Once", fallback_after="1h")
    await org.dispatch()
    clock.advance(hours=2)
    # A second process on the same database, scanning at the same moment.
    other = await make_client(transport=httpx.MockTransport(org.providers), **settings_for())
    moved = await asyncio.gather(
        fall_back_on_silence(org.ctx),
        fall_back_on_silence(other.ctx),  # type: ignore[attr-defined]
    )
    assert sum(moved) == 1
    async with org.ctx.sessions() as session:
        assert (await session.exec(select(func.count()).select_from(OutboxItem))).one() == 1
    # And after a restart: a new process finds nothing left to do.
    restarted = await make_client(transport=httpx.MockTransport(org.providers), **settings_for())
    service = SilenceFallback(restarted.ctx)  # type: ignore[attr-defined]
    assert await service.run_once() == 0
    await org.dispatch()
    assert org.providers.sms_to(PHONE) == ["Once"]


async def test_the_announcement_report_counts_who_was_reached_on_fallback(
    make_client: MakeClient, clock: FakeClock
) -> None:
    org = await Org.start(make_client, clock)
    await org.team("Canvassing")
    await telegram_then_sms(org)  # silent on telegram: reached by SMS
    sara = await sms_then_telegram(org)  # delivered on SMS: nothing more
    created = await org.api(
        "POST",
        "/announcements",
        202,
        json={
            "body": "Rally at noon",
            "audience": {"teams": ["Canvassing"]},
            "fallback_after": "2h",
        },
    )
    assert created["fallback_after"] == 7200
    await org.dispatch()
    [request] = [r for r in org.providers.twilio.requests if r.get("To") == OTHER_PHONE]
    assert request.sid is not None
    await twilio_status(org, request.sid, "delivered")

    clock.advance(hours=2)
    assert await fall_back_on_silence(org.ctx) == 1
    await org.dispatch()
    assert org.providers.sms_to(PHONE) == ["Rally at noon"]
    assert org.providers.telegram_to(OTHER_CHAT) == []
    report = await org.api("GET", f"/announcements/{created['id']}")
    assert (report["fallback_on_silence"], report["reached_on_fallback"]) == (1, 1)
    assert report["counts"] == {"sent": 1, "delivered": 1}
    assert sara["id"]

    # The console report page says so too.
    await add_user(org.client)
    assert (await sign_in(org.client)).status_code == 303
    page = await org.client.get(f"/console/announcements/{created['id']}")
    assert page.status_code == 200
    assert "<dt>Reached on second channel</dt><dd>1</dd>" in page.text
    assert "not delivered or read within 2h: 1" in page.text


async def test_bad_spans_are_422_naming_the_field_and_queue_nothing(
    make_client: MakeClient, clock: FakeClock
) -> None:
    org = await Org.start(make_client, clock)
    await org.team("Canvassing")
    tomas = await telegram_then_sms(org)
    for bad in ("6", "6 hours", "0s", "-1h", "31d", "1w", ""):
        answer = await org.client.post(
            f"/api/v1/supporters/{tomas['id']}/messages",
            json={"body": "Hi", "fallback_after": bad},
        )
        assert answer.status_code == 422, bad
        assert [e["field"] for e in answer.json()["errors"]] == ["body.fallback_after"]
        answer = await org.client.post(
            "/api/v1/announcements",
            json={"body": "Hi", "audience": {"all": True}, "fallback_after": bad},
        )
        assert answer.status_code == 422, bad
        assert [e["field"] for e in answer.json()["errors"]] == ["body.fallback_after"]
    async with org.ctx.sessions() as session:
        assert (await session.exec(select(func.count()).select_from(OutboxItem))).one() == 0


async def test_serve_runs_the_scan_beside_the_dispatcher(make_client: MakeClient) -> None:
    client = await make_client(run_dispatcher=True)
    client.headers.update(bearer(await new_key(client.ctx)))  # type: ignore[attr-defined]
    kinds = {type(s) for s in background_services(client.ctx)}  # type: ignore[attr-defined]
    assert SilenceFallback in kinds
