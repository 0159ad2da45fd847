"""Group commit of webhooks (routing/inbound/batch.py): concurrent requests share one
transaction, and each is still stored once, answered only after its commit, and unharmed
by a bad neighbour. Requests are signed with twilio's RequestValidator."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import httpx
from sqlalchemy import event, func
from sqlmodel import col, select

from channels.base import InboundMessage
from routing.context import AppContext
from routing.inbound.batch import batcher_for, store_batch, submit
from storage.models import (
    ConsentEvent,
    Conversation,
    Message,
    MessageAttempt,
    MessageStatusEvent,
    PendingStatus,
    Supporter,
    SupporterAddress,
)
from tests.channels.twilio_case import SETTINGS, signed_post, sms_form
from tests.routing.fake_adapter import add_supporter, sent_message

MakeClient = Callable[..., Awaitable[httpx.AsyncClient]]
TIMEOUT = 20


def sender(n: int) -> str:
    return f"+1415555{n:04d}"


async def post(client: httpx.AsyncClient, sid: str, frm: str, body: str) -> int:
    request = signed_post(sms_form(sid, frm, body))
    answer = await client.post(request.path, headers=request.headers, content=request.content)
    return answer.status_code


def inbound(sid: str, frm: str, body: str = "hello") -> InboundMessage:
    return InboundMessage(channel="sms", address=frm, provider_message_id=sid, body=body)


async def count(ctx: AppContext, model: type, *where: object) -> int:
    async with ctx.sessions() as session:
        query = select(func.count()).select_from(model).where(*where)  # type: ignore[arg-type]
        return int((await session.exec(query)).one())


async def test_concurrent_webhooks_are_stored_once_in_few_transactions(
    make_client: MakeClient,
) -> None:
    client = await make_client(**SETTINGS)
    ctx: AppContext = client.ctx  # type: ignore[attr-defined]
    # 40 messages from 10 people, and a provider retry of 10 of them, all at once.
    posts = [post(client, f"SMb{i:03d}", sender(i % 10), f"msg {i}") for i in range(40)]
    posts += [post(client, f"SMb{i:03d}", sender(i % 10), f"msg {i}") for i in range(0, 40, 4)]
    codes = await asyncio.wait_for(asyncio.gather(*posts), TIMEOUT)

    assert codes == [200] * 50
    assert await count(ctx, Message, col(Message.direction) == "inbound") == 40
    assert await count(ctx, Supporter) == 10
    assert await count(ctx, SupporterAddress) == 10
    async with ctx.sessions() as session:
        convos = (await session.exec(select(Conversation))).all()
    assert sorted(c.unread_count for c in convos) == [4] * 10
    assert all(c.unread for c in convos)
    assert batcher_for(ctx).batches < 50  # shared transactions, not one per request


async def test_duplicates_within_and_across_batches(make_client: MakeClient) -> None:
    client = await make_client(**SETTINGS)
    ctx: AppContext = client.ctx  # type: ignore[attr-defined]
    first = [
        [inbound("SMd1", sender(1))],
        [inbound("SMd1", sender(1))],
        [inbound("SMd2", sender(2))],
    ]
    async with ctx.sessions() as session:
        reports = await store_batch(session, ctx, first)
        await session.commit()
    assert [(len(r.stored), r.duplicates) for r in reports] == [(1, 0), (0, 1), (1, 0)]

    again = [[inbound("SMd2", sender(2)), inbound("SMd3", sender(2))]]
    async with ctx.sessions() as session:
        [report] = await store_batch(session, ctx, again)
        await session.commit()
    assert (len(report.stored), report.duplicates) == (1, 1)
    assert await count(ctx, Message) == 3
    assert await count(ctx, Supporter) == 2


async def test_a_request_is_answered_only_after_its_commit(make_client: MakeClient) -> None:
    client = await make_client(**SETTINGS)
    ctx: AppContext = client.ctx  # type: ignore[attr-defined]
    order: list[str] = []
    event.listen(ctx.engine.sync_engine, "commit", lambda _conn: order.append("commit"))
    lane = batcher_for(ctx).lane  # SQLite: plain batches commit on their own lane
    if lane is not None:
        lane.after_commit = lambda: order.append("commit")

    async def one(i: int) -> None:
        await submit(ctx, [inbound(f"SMc{i}", sender(i))])
        order.append(f"answered {i}")
        # Visible to another connection by the time the request is answered.
        assert await count(ctx, Message, col(Message.provider_message_id) == f"SMc{i}") == 1

    await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(5))), TIMEOUT)
    assert order[0] == "commit"
    for i in range(5):
        assert "commit" in order[: order.index(f"answered {i}")]


async def test_a_bad_event_fails_alone(make_client: MakeClient) -> None:
    client = await make_client(**SETTINGS)
    ctx: AppContext = client.ctx  # type: ignore[attr-defined]
    bad = InboundMessage(channel="sms", address=sender(9), provider_message_id="SMbad", body=None)  # type: ignore[arg-type]
    jobs = [submit(ctx, [inbound(f"SMok{i}", sender(i))]) for i in range(4)]
    jobs.insert(2, submit(ctx, [bad]))
    results = await asyncio.wait_for(asyncio.gather(*jobs, return_exceptions=True), TIMEOUT)

    assert isinstance(results[2], Exception)
    assert all(
        not isinstance(r, BaseException) and len(r.stored) == 1
        for i, r in enumerate(results)
        if i != 2
    )
    assert await count(ctx, Message) == 4
    assert await count(ctx, Message, col(Message.provider_message_id) == "SMbad") == 0


async def test_keywords_still_act_inside_a_batch(make_client: MakeClient) -> None:
    client = await make_client(**SETTINGS, twilio_handles_opt_out=False)
    ctx: AppContext = client.ctx  # type: ignore[attr-defined]
    posts = [post(client, f"SMk{i}", sender(i), "see you there") for i in range(6)]
    posts.insert(3, post(client, "SMkstop", sender(3), "STOP"))
    assert await asyncio.wait_for(asyncio.gather(*posts), TIMEOUT) == [200] * 7

    async with ctx.sessions() as session:
        people = (await session.exec(select(Supporter).order_by(col(Supporter.id)))).all()
        [consent] = (await session.exec(select(ConsentEvent))).all()
        stop = (
            await session.exec(select(Message).where(Message.provider_message_id == "SMkstop"))
        ).one()
        replies = (await session.exec(select(Message).where(Message.direction == "outbound"))).all()
    assert [p.opted_out for p in people].count(True) == 1
    assert (consent.action, consent.message_id) == ("opt_out", stop.id)
    assert [(r.kind, r.supporter_id) for r in replies] == [("consent", stop.supporter_id)]


async def test_an_email_saying_stop_in_its_subject_opts_out_inside_a_batch(
    make_client: MakeClient,
) -> None:
    client = await make_client()
    ctx: AppContext = client.ctx  # type: ignore[attr-defined]
    stop = InboundMessage(
        channel="email",
        address="ada@example.org",
        provider_message_id="<s@x>",
        body="",
        subject="STOP",
    )
    others = [inbound(f"SMe{i}", sender(i)) for i in range(3)]
    await asyncio.wait_for(asyncio.gather(*(submit(ctx, [e]) for e in [*others, stop])), TIMEOUT)
    async with ctx.sessions() as session:
        opted = (await session.exec(select(Supporter).where(col(Supporter.opted_out)))).all()
    assert [s.name for s in opted] == ["ada@example.org"]


async def sent_sms(ctx: AppContext, sid: str, n: int) -> int:
    supporter_id = await add_supporter(ctx, {"sms": sender(n)}, name=f"P{n}")
    return await sent_message(ctx, supporter_id, "sms", sender(n), sid, body="Saturday?")


async def test_status_callbacks_in_a_batch_move_forward_only(make_client: MakeClient) -> None:
    client = await make_client(**SETTINGS)
    ctx: AppContext = client.ctx  # type: ignore[attr-defined]
    ids = [await sent_sms(ctx, f"SMs{n}", n) for n in range(3)]

    def callback(sid: str, status: str) -> Awaitable[httpx.Response]:
        params = {
            "MessageSid": sid,
            "MessageStatus": status,
            "AccountSid": SETTINGS["twilio_account_sid"],
            "To": sender(0),
            "From": SETTINGS["twilio_sms_from"],
        }
        request = signed_post(params, "/webhooks/twilio/status")
        return client.post(request.path, headers=request.headers, content=request.content)

    answers = await asyncio.wait_for(
        asyncio.gather(
            callback("SMs0", "delivered"),
            callback("SMs0", "sent"),  # late and backwards: ignored
            callback("SMs1", "read"),
            callback("SMs1", "delivered"),  # backwards after read: ignored
            callback("SMs2", "undelivered"),
            callback("SMs2", "delivered"),  # after a final status: ignored
            callback("SMunknown", "delivered"),  # not sent yet: kept for later
        ),
        TIMEOUT,
    )
    assert [a.status_code for a in answers] == [200] * 7
    async with ctx.sessions() as session:
        messages = [await session.get(Message, i) for i in ids]
        attempts = (
            await session.exec(select(MessageAttempt).order_by(col(MessageAttempt.id)))
        ).all()
        events = (
            await session.exec(select(MessageStatusEvent).order_by(col(MessageStatusEvent.id)))
        ).all()
        [pending] = (await session.exec(select(PendingStatus))).all()
    assert [m.status for m in messages if m] == ["delivered", "read", "undelivered"]
    assert [a.status for a in attempts] == ["delivered", "read", "undelivered"]
    assert sorted((e.message_id, e.status) for e in events) == sorted(
        [(ids[0], "delivered"), (ids[1], "read"), (ids[2], "undelivered")]
    )
    assert (pending.provider_message_id, pending.status) == ("SMunknown", "delivered")
