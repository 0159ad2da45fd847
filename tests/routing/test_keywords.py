"""Consent keywords: matching, and what STOP / START / HELP do over every channel."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlmodel import col, select

from channels.base import Channel, InboundMessage
from routing.context import AppContext
from routing.inbound.store import ingest
from routing.organizing.keywords import classify
from storage.models import ConsentEvent, Message, OnboardingState
from tests.routing.fake_channel import (
    ADDRESSES,
    FakeChannel,
    outbound,
    outbox_message_ids,
    say,
    supporter_by_address,
)

MakeClient = Callable[..., Awaitable[httpx.AsyncClient]]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("STOP", "opt_out"),
        ("stop", "opt_out"),
        ("Stop!", "opt_out"),
        (" stop. ", "opt_out"),
        ("\tSTOP\n", "opt_out"),
        ("«stop»", "opt_out"),
        ("¡Stop!", "opt_out"),
        ("stop。", "opt_out"),
        ("\u200bstop\u200b", "opt_out"),
        ("ＳＴＯＰ", "opt_out"),  # full-width letters
        ("StopAll", "opt_out"),
        ("unsubscribe", "opt_out"),
        ("Cancel", "opt_out"),
        ("END", "opt_out"),
        ("quit", "opt_out"),
        ("REVOKE", "opt_out"),
        ("optout", "opt_out"),
        ("/stop", "opt_out"),
        ("/stop@mybot", "opt_out"),
        ("/STOP@My_Bot", "opt_out"),
        ("START", "opt_in"),
        ("unstop", "opt_in"),
        ("Yes!", "opt_in"),
        ("HELP", "help"),
        ("info?", "help"),
        ("/help", "help"),
        ("stop please", None),
        ("please stop", None),
        ("don't stop", None),
        ("st op", None),
        ("stopp", None),
        ("opt out", None),
        ("stop@mybot", None),
        ("/stop@", "opt_out"),  # trailing punctuation is ignored
        ("", None),
        ("   ", None),
        ("!!!", None),
        ("JOIN", None),
        # Longer than the remembered texts: the same answers, computed afresh.
        ("stop" + " " * 300 + "!", "opt_out"),
        ("please " * 50 + "stop", None),
    ],
)
def test_keyword_matching(text: str, expected: str | None) -> None:
    assert classify(text) == expected


async def configured(make_client: MakeClient, **settings: Any) -> AppContext:
    client = await make_client(**settings)
    ctx: AppContext = client.ctx  # type: ignore[attr-defined]
    ctx.registry.add(FakeChannel())
    return ctx


async def consent_events(ctx: AppContext, supporter_id: int) -> list[ConsentEvent]:
    async with ctx.sessions() as session:
        rows = await session.exec(
            select(ConsentEvent)
            .where(ConsentEvent.supporter_id == supporter_id)
            .order_by(col(ConsentEvent.id))
        )
        return list(rows.all())


@pytest.mark.parametrize("channel", ["sms", "whatsapp", "telegram", "email"])
async def test_stop_opts_out_and_confirms_once_on_the_same_channel(
    make_client: MakeClient, channel: Channel
) -> None:
    ctx = await configured(make_client, twilio_handles_opt_out=False)
    body = "/stop" if channel == "telegram" else "Stop."
    inbound_id = await say(ctx, body, channel)

    supporter = await supporter_by_address(ctx, channel, ADDRESSES[channel])
    assert supporter.opted_out is True
    assert supporter.opted_out_at == ctx.clock()
    assert supporter.id is not None
    [event] = await consent_events(ctx, supporter.id)
    assert (event.action, event.channel, event.message_id) == ("opt_out", channel, inbound_id)
    assert event.created_at == ctx.clock()

    [reply] = await outbound(ctx)
    assert (reply.kind, reply.channel, reply.status) == ("consent", channel, "queued")
    assert reply.address == ADDRESSES[channel]
    assert reply.body == ctx.settings.opt_out_text
    assert reply.id in await outbox_message_ids(ctx)
    async with ctx.sessions() as session:
        stored = await session.get(Message, inbound_id)
    assert stored is not None and stored.body == body  # the keyword stays in the conversation

    await say(ctx, "STOP", channel)  # a second STOP: still opted out, no second confirmation
    assert len(await outbound(ctx)) == 1
    assert len(await consent_events(ctx, supporter.id)) == 2


async def test_no_confirmation_on_twilio_sms_when_twilio_answers_stop(
    make_client: MakeClient,
) -> None:
    ctx = await configured(make_client)  # twilio_handles_opt_out defaults to true
    await say(ctx, "STOP", "sms")
    supporter = await supporter_by_address(ctx, "sms", ADDRESSES["sms"])
    assert supporter.opted_out is True
    assert supporter.id is not None
    assert len(await consent_events(ctx, supporter.id)) == 1
    assert await outbound(ctx) == []
    await say(ctx, "HELP", "sms")  # Twilio answers HELP on SMS too
    assert await outbound(ctx) == []
    await say(ctx, "STOP", "whatsapp")  # other channels still get our confirmation
    [reply] = await outbound(ctx)
    assert (reply.channel, reply.body) == ("whatsapp", ctx.settings.opt_out_text)


async def test_start_opts_back_in_with_a_confirmation(make_client: MakeClient) -> None:
    ctx = await configured(make_client, opt_in_text="Welcome back.")
    await say(ctx, "STOP", "telegram")
    await say(ctx, "start", "telegram")
    supporter = await supporter_by_address(ctx, "telegram", ADDRESSES["telegram"])
    assert supporter.opted_out is False
    assert supporter.opted_out_at is None
    assert supporter.id is not None
    assert [e.action for e in await consent_events(ctx, supporter.id)] == ["opt_out", "opt_in"]
    bodies = [(m.kind, m.body, m.status) for m in await outbound(ctx)]
    assert bodies == [
        ("consent", ctx.settings.opt_out_text, "queued"),
        ("consent", "Welcome back.", "queued"),
    ]


async def test_yes_from_a_subscribed_supporter_is_not_consumed(make_client: MakeClient) -> None:
    ctx = await configured(make_client)
    await say(ctx, "YES", "whatsapp")
    supporter = await supporter_by_address(ctx, "whatsapp", ADDRESSES["whatsapp"])
    assert supporter.id is not None
    assert await consent_events(ctx, supporter.id) == []
    assert await outbound(ctx) == []


async def test_help_is_answered_even_when_opted_out(make_client: MakeClient) -> None:
    ctx = await configured(make_client, help_text="Text STOP to leave. Organizer: 555-0100")
    await say(ctx, "help", "email")
    await say(ctx, "STOP", "email")
    await say(ctx, "INFO", "email")
    kinds = [(m.kind, m.body, m.status) for m in await outbound(ctx)]
    assert kinds == [
        ("consent", "Text STOP to leave. Organizer: 555-0100", "queued"),
        ("consent", ctx.settings.opt_out_text, "queued"),
        ("consent", "Text STOP to leave. Organizer: 555-0100", "queued"),
    ]


async def test_ordinary_messages_to_opted_out_supporters_stay_skipped(
    make_client: MakeClient,
) -> None:
    """The consent bypass is for the consent replies only."""
    from routing.outbound.queue import queue_message

    ctx = await configured(make_client)
    await say(ctx, "STOP", "telegram")
    supporter = await supporter_by_address(ctx, "telegram", ADDRESSES["telegram"])
    async with ctx.sessions() as session:
        message = await queue_message(session, ctx, supporter, "Rally on Friday")
        await session.commit()
    assert (message.status, message.error) == ("skipped", "opted out")
    assert message.id not in await outbox_message_ids(ctx)


async def test_stop_mid_onboarding_is_handled_by_consent_first(make_client: MakeClient) -> None:
    ctx = await configured(make_client)
    await say(ctx, "JOIN", "whatsapp")
    await say(ctx, "STOP", "whatsapp")
    supporter = await supporter_by_address(ctx, "whatsapp", ADDRESSES["whatsapp"])
    assert supporter.opted_out is True
    assert supporter.name == ADDRESSES["whatsapp"]  # STOP was not taken as their name
    async with ctx.sessions() as session:
        state = await session.get(OnboardingState, supporter.id)
    assert state is not None and state.step == "name"
    assert [m.kind for m in await outbound(ctx)] == ["auto_reply", "consent"]
    await say(ctx, "Ada", "whatsapp")  # opted out: onboarding does not carry on
    assert len(await outbound(ctx)) == 2


async def test_email_with_an_empty_body_may_say_stop_in_its_subject(
    make_client: MakeClient,
) -> None:
    ctx = await configured(make_client)
    await ingest(
        ctx,
        [
            InboundMessage(
                channel="email",
                address="ada@example.org",
                provider_message_id="<e1@example.org>",
                body="",
                subject="Unsubscribe",
            )
        ],
    )
    assert (await supporter_by_address(ctx, "email", "ada@example.org")).opted_out is True
    [reply] = await outbound(ctx)
    assert (reply.channel, reply.body) == ("email", ctx.settings.opt_out_text)
