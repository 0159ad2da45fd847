"""The thread page over plain HTTP: what it says about each message (failed reasons, a
fallback, why a message is still queued and until when), the router's pick and why, the
segment counter, bad replies re-rendered; and the live feed (one database look per wake,
however many pages listen)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from datetime import timedelta
from html import unescape

import httpx
from sqlmodel import select

from channels.sms_segments import count_segments
from gateway.console.thread_data import segments_text
from routing.inbox.feed import feed_for
from storage.models import Message, MessageAttempt, OutboxItem, SupporterAddress
from tests.channels.twilio_case import SETTINGS, signed_post, sms_form
from tests.console.test_console_http import add_user, csrf_of, sign_in
from tests.console.thread_case import add_supporter

Factory = Callable[..., Awaitable[httpx.AsyncClient]]


async def signed_in(make_client: Factory) -> httpx.AsyncClient:
    client = await make_client(**SETTINGS)
    await add_user(client)
    assert (await sign_in(client)).status_code == 303
    return client


def text_of(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


async def test_delivery_details_and_route(make_client: Factory) -> None:
    client = await signed_in(make_client)
    ctx = client.ctx  # type: ignore[attr-defined]
    now = ctx.clock().replace(hour=22, minute=0, second=0, microsecond=0)  # quiet hours (UTC)
    ctx.clock.set(now)
    async with ctx.sessions() as session:
        convo = await add_supporter(session, "Wen", "hi", at=now - timedelta(hours=30))
        sid = (await session.get(Message, 1)).supporter_id  # type: ignore[union-attr]
        session.add(
            SupporterAddress(
                supporter_id=sid,
                channel="whatsapp",
                address="+14155550101",
                last_inbound_at=now - timedelta(hours=30),
            )
        )

        def out(body: str, status: str, **kw: object) -> Message:
            m = Message(
                conversation_id=convo,
                supporter_id=sid,
                direction="outbound",
                channel="sms",
                body=body,
                status=status,
                created_at=now,
                updated_at=now,
                **kw,  # type: ignore[arg-type]
            )
            session.add(m)
            return m

        held = out("held one", "queued", kind="announcement")
        retry = out("retry one", "queued", error="sms: Throttled (retrying in 30 s)")
        limited = out("limited one", "queued")
        failed = out("failed one", "failed", error="invalid number")
        fell = out("fell back", "delivered")
        await session.flush()
        morning = (now + timedelta(days=1)).replace(hour=8)
        session.add_all(
            [
                OutboxItem(message_id=held.id, priority=1, due_at=morning, created_at=now),
                OutboxItem(
                    message_id=retry.id,
                    due_at=now + timedelta(seconds=30),
                    attempts=1,
                    created_at=now,
                ),
                OutboxItem(
                    message_id=limited.id, due_at=now + timedelta(seconds=5), created_at=now
                ),
                MessageAttempt(
                    message_id=fell.id,
                    channel="whatsapp",
                    address="+14155550101",
                    status="failed",
                    error="window closed",
                    created_at=now,
                ),
                MessageAttempt(
                    message_id=fell.id,
                    channel="sms",
                    address="+14155550101",
                    status="delivered",
                    created_at=now,
                ),
            ]
        )
        await session.commit()
        assert failed.id is not None
    page = await client.get(f"/console/conversations/{convo}")
    assert page.status_code == 200
    text = text_of(page.text)
    assert f"held for quiet hours until {morning:%d %b %H:%M} UTC" in text
    assert "will retry at" in text and "after sms: Throttled" in text
    assert "waiting for the channel's rate limit until" in text
    assert "Failed: invalid number" in text
    assert "Delivered: Tried whatsapp (failed: window closed), then sms" in text
    assert "Will send over sms" in text
    assert "whatsapp: 24 h window closed and no template" in text
    assert "WhatsApp 24-hour window: closed since" in text


async def test_segments_and_bad_replies(make_client: Factory) -> None:
    client = await signed_in(make_client)
    ctx = client.ctx  # type: ignore[attr-defined]
    async with ctx.sessions() as session:
        convo = await add_supporter(session, "Ola", "hi", at=ctx.clock())
        gone = await add_supporter(
            session, "Gus", "STOP", at=ctx.clock(), phone="+14155550109", opted_out=True
        )
        # Only an email address, and email is not configured: no channel reaches them.
        unreachable = await add_supporter(
            session, "Una", "hi", at=ctx.clock(), phone="una@example.org"
        )
        address = (
            await session.exec(
                select(SupporterAddress).where(SupporterAddress.address == "una@example.org")
            )
        ).one()
        address.channel = "email"
        session.add(address)
        await session.commit()
    page = await client.get(f"/console/conversations/{convo}")
    token = csrf_of(page.text)
    for text in ("plain", "€" * 80, "🚲" * 40):
        counted = await client.post(
            f"/console/conversations/{convo}/segments",
            data={"body": text},
            headers={"X-CSRF-Token": token},
        )
        assert counted.text == segments_text(text)
        assert f"{count_segments(text).segments} SMS segment" in counted.text
    empty = await client.post(
        f"/console/conversations/{convo}/reply", data={"body": "  ", "csrf_token": token}
    )
    assert empty.status_code == 422 and "Type a reply first." in empty.text
    refused = await client.post(
        f"/console/conversations/{gone}/reply", data={"body": "still there?", "csrf_token": token}
    )
    assert refused.status_code == 409 and "opted out" in refused.text
    cannot = await client.post(
        f"/console/conversations/{unreachable}/reply", data={"body": "hello?", "csrf_token": token}
    )
    assert cannot.status_code == 409 and "cannot reach the supporter" in cannot.text
    assert ">hello?</textarea>" in cannot.text  # what was typed is kept
    async with ctx.sessions() as session:
        outbound = await session.exec(select(Message).where(Message.direction == "outbound"))
        assert outbound.all() == []  # nothing was queued


async def test_one_feed_look_wakes_many_pages(make_client: Factory) -> None:
    client = await make_client(**SETTINGS)
    ctx = client.ctx  # type: ignore[attr-defined]
    async with ctx.sessions() as session:
        mine = await add_supporter(session, "A", "hi", at=ctx.clock(), phone="+14155550101")
        other = await add_supporter(session, "B", "hi", at=ctx.clock(), phone="+14155550102")
        await session.commit()
    feed = feed_for(ctx)
    inboxes = [await feed.subscribe(None) for _ in range(200)]
    thread = await feed.subscribe(mine)
    elsewhere = await feed.subscribe(other)
    request = signed_post(sms_form("SM" + "c" * 32, "+14155550101", "new"))
    response = await client.post(request.path, headers=request.headers, content=request.content)
    assert response.status_code == 200
    await asyncio.wait_for(thread.event.wait(), 5)
    await asyncio.wait_for(asyncio.gather(*(i.event.wait() for i in inboxes)), 5)
    assert not elsewhere.event.is_set()
    assert feed.looks == 1  # one look for 202 listeners, woken by the ingest commit
    for listener in [*inboxes, thread, elsewhere]:
        feed.unsubscribe(listener)
    assert feed.listeners == 0
