"""Consent keywords and onboarding through the real webhooks (signed as the providers sign),
and the confirmation actually sent through the dispatcher to a faked provider API."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
import pytest
from sqlmodel import select

from channels.telegram.fake import FakeTelegramApi
from routing.context import AppContext
from routing.dispatch.dispatcher import Dispatcher
from storage.models import ConsentEvent, Message, Supporter, Team, TeamMembership
from tests.channels.contract import ContractCase, SignedRequest
from tests.channels.telegram_case import (
    SETTINGS as TELEGRAM,
)
from tests.channels.telegram_case import (
    TOKEN,
    TelegramCase,
    post,
    text_update,
)
from tests.channels.twilio_case import TwilioCase
from tests.channels.whatsapp_cloud_case import WhatsAppCloudCase
from tests.routing.fake_channel import outbound, supporter_by_address

MakeClient = Callable[..., Awaitable[httpx.AsyncClient]]
CASES: list[ContractCase] = [TelegramCase(), WhatsAppCloudCase(), TwilioCase()]


async def send(client: httpx.AsyncClient, request: SignedRequest) -> None:
    answer = await client.request(
        request.method, request.path, headers=request.headers, content=request.content
    )
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.provider)
async def test_stop_through_the_webhook(case: ContractCase, make_client: MakeClient) -> None:
    client = await make_client(**case.settings, twilio_handles_opt_out=False)
    ctx: AppContext = client.ctx  # type: ignore[attr-defined]
    sender = case.sender()
    stop = case.inbound("kw-1", sender, "Stop!")
    await send(client, stop)
    await send(client, stop)  # the provider's retry: stored once, confirmed once

    supporter = await supporter_by_address(ctx, case.channel, sender)
    assert supporter.opted_out is True
    async with ctx.sessions() as session:
        [event] = (await session.exec(select(ConsentEvent))).all()
        [inbound] = (
            await session.exec(select(Message).where(Message.direction == "inbound"))
        ).all()
    assert (event.action, event.channel, event.message_id) == ("opt_out", case.channel, inbound.id)
    [reply] = await outbound(ctx)
    assert (reply.kind, reply.channel, reply.address, reply.status) == (
        "consent",
        case.channel,
        sender,
        "queued",
    )

    await send(client, case.inbound("kw-2", sender, "START"))
    assert (await supporter_by_address(ctx, case.channel, sender)).opted_out is False
    assert [m.body for m in await outbound(ctx)] == [
        ctx.settings.opt_out_text,
        ctx.settings.opt_in_text,
    ]


async def test_twilio_sms_stop_gets_no_second_reply(make_client: MakeClient) -> None:
    case = TwilioCase()
    client = await make_client(**case.settings)  # Twilio answers STOP itself by default
    ctx: AppContext = client.ctx  # type: ignore[attr-defined]
    await send(client, case.inbound("kw-3", case.sender(), "stop"))
    assert (await supporter_by_address(ctx, "sms", case.sender())).opted_out is True
    assert await outbound(ctx) == []


async def test_telegram_stop_confirmation_is_sent_although_opted_out(
    make_client: MakeClient,
) -> None:
    fake = FakeTelegramApi(token=TOKEN)
    client = await make_client(transport=fake.transport, **TELEGRAM)
    ctx: AppContext = client.ctx  # type: ignore[attr-defined]
    await send(client, post(text_update(1001, 5550003, "/stop@rallypoint_bot")))
    await Dispatcher(ctx).run_until_idle()
    assert fake.sent["5550003"] == [ctx.settings.opt_out_text]
    [reply] = await outbound(ctx)
    assert reply.status == "sent"


async def test_telegram_onboarding_end_to_end(make_client: MakeClient) -> None:
    fake = FakeTelegramApi(token=TOKEN)
    client = await make_client(transport=fake.transport, org_name="Sunrise Hub", **TELEGRAM)
    ctx: AppContext = client.ctx  # type: ignore[attr-defined]
    async with ctx.sessions() as session:
        team = Team(
            name="Canvassing",
            welcome_text="Welcome aboard, {name}!",
            orientation_call="Thursday 6pm, meet.example.org/x",
            created_at=ctx.clock(),
        )
        session.add(team)
        await session.commit()
    for update_id, text in [(2001, "/start"), (2002, "Wanjiru Kamau"), (2003, "1")]:
        await send(client, post(text_update(update_id, 5550004, text)))
    await Dispatcher(ctx).run_until_idle()
    assert fake.sent["5550004"] == [
        "Welcome to Sunrise Hub! What's your name?",
        "Which team would you like to join? 1) Canvassing. Reply with a number.",
        "Welcome aboard, Wanjiru Kamau!\nNext orientation call: Thursday 6pm, meet.example.org/x",
    ]
    async with ctx.sessions() as session:
        [supporter] = (await session.exec(select(Supporter))).all()
        [membership] = (await session.exec(select(TeamMembership))).all()
    assert supporter.name == "Wanjiru Kamau"
    assert (membership.supporter_id, membership.team_id) == (supporter.id, team.id)
