"""Onboarding: JOIN → name → team → welcome, re-asking once, then a coordinator's turn."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from sqlmodel import select

from channels.base import InboundMessage
from routing.context import AppContext
from routing.inbound.store import ingest
from storage.models import Conversation, OnboardingState, Team, TeamMembership
from tests.routing.fake_channel import ADDRESSES, FakeChannel, outbound, say, supporter_by_address

MakeClient = Callable[..., Awaitable[httpx.AsyncClient]]


async def configured(make_client: MakeClient, **settings: Any) -> AppContext:
    client = await make_client(**settings)
    ctx: AppContext = client.ctx  # type: ignore[attr-defined]
    ctx.registry.add(FakeChannel())
    return ctx


async def add_teams(ctx: AppContext) -> list[Team]:
    async with ctx.sessions() as session:
        teams = [
            Team(
                name="Canvassing",
                welcome_text="Welcome to the canvass crew, {name}!",
                orientation_call="Tuesday 7pm on Zoom",
                created_at=ctx.clock(),
            ),
            Team(name="Phone bank", created_at=ctx.clock()),
        ]
        for team in teams:
            session.add(team)
            await session.flush()
        await session.commit()
    return teams


async def replies(ctx: AppContext) -> list[tuple[str, str | None, str]]:
    return [(m.body, m.channel, m.kind) for m in await outbound(ctx)]


async def state_of(ctx: AppContext, supporter_id: int | None) -> OnboardingState | None:
    async with ctx.sessions() as session:
        return await session.get(OnboardingState, supporter_id)


async def memberships(ctx: AppContext) -> list[tuple[int, int]]:
    async with ctx.sessions() as session:
        rows = (await session.exec(select(TeamMembership))).all()
        return [(row.supporter_id, row.team_id) for row in rows]


async def test_join_name_team_number_welcome(make_client: MakeClient) -> None:
    ctx = await configured(make_client, org_name="Sunrise Hub")
    canvassing, _ = await add_teams(ctx)
    await say(ctx, "join", "sms")
    await say(ctx, "  Ada   Lovelace ", "sms")
    await say(ctx, "1", "sms")

    supporter = await supporter_by_address(ctx, "sms", ADDRESSES["sms"])
    assert supporter.name == "Ada Lovelace"
    assert await memberships(ctx) == [(supporter.id, canvassing.id)]
    assert await replies(ctx) == [
        ("Welcome to Sunrise Hub! What's your name?", "sms", "auto_reply"),
        (
            "Which team would you like to join? 1) Canvassing 2) Phone bank. Reply with a number.",
            "sms",
            "auto_reply",
        ),
        (
            "Welcome to the canvass crew, Ada Lovelace!"
            "\nNext orientation call: Tuesday 7pm on Zoom",
            "sms",
            "auto_reply",
        ),
    ]
    assert all(m.status == "queued" for m in await outbound(ctx))
    state = await state_of(ctx, supporter.id)
    assert state is not None and state.step == "done"
    await say(ctx, "Thanks!", "sms")  # after onboarding, messages are ordinary conversation
    assert len(await outbound(ctx)) == 3


async def test_team_by_name_and_default_welcome(make_client: MakeClient) -> None:
    ctx = await configured(make_client)
    _, phone_bank = await add_teams(ctx)
    await say(ctx, "JOIN!", "whatsapp")
    await say(ctx, "Grace", "whatsapp")
    await say(ctx, "phone bank", "whatsapp")
    supporter = await supporter_by_address(ctx, "whatsapp", ADDRESSES["whatsapp"])
    assert await memberships(ctx) == [(supporter.id, phone_bank.id)]
    assert (await replies(ctx))[-1] == ("Welcome to Phone bank, Grace!", "whatsapp", "auto_reply")


async def test_telegram_start_begins_onboarding_but_not_with_a_link_payload(
    make_client: MakeClient,
) -> None:
    ctx = await configured(make_client)
    await ingest(
        ctx,
        [
            InboundMessage(
                channel="telegram",
                address="5550001",
                provider_message_id="t-1",
                body="/start abc123",
                start_payload="abc123",
            )
        ],
    )
    assert await replies(ctx) == []
    await say(ctx, "/start", "telegram")
    assert await replies(ctx) == [
        ("Welcome to Rallypoint! What's your name?", "telegram", "auto_reply")
    ]


async def test_no_teams_skips_the_team_step(make_client: MakeClient) -> None:
    ctx = await configured(make_client)
    await say(ctx, "JOIN", "email")
    await say(ctx, "Katherine", "email")
    assert (await replies(ctx))[-1] == (
        "Thanks, Katherine! You're signed up. An organizer will be in touch.",
        "email",
        "auto_reply",
    )
    supporter = await supporter_by_address(ctx, "email", ADDRESSES["email"])
    state = await state_of(ctx, supporter.id)
    assert state is not None and state.step == "done"
    assert await memberships(ctx) == []


async def test_invalid_answer_is_asked_again_once_then_handed_off(make_client: MakeClient) -> None:
    ctx = await configured(make_client)
    await add_teams(ctx)
    await say(ctx, "JOIN", "telegram")
    await say(ctx, "Mary", "telegram")
    await say(ctx, "7", "telegram")
    assert (await replies(ctx))[-1][0] == (
        "Sorry, I didn't get that. Which team would you like to join? "
        "1) Canvassing 2) Phone bank. Reply with a number."
    )
    await say(ctx, "whichever is closest to me", "telegram")
    assert (await replies(ctx))[-1] == (
        "Thanks — an organizer will get back to you.",
        "telegram",
        "auto_reply",
    )
    supporter = await supporter_by_address(ctx, "telegram", ADDRESSES["telegram"])
    state = await state_of(ctx, supporter.id)
    assert state is not None and state.step == "handoff"
    assert await memberships(ctx) == []
    async with ctx.sessions() as session:
        convo = (
            await session.exec(
                select(Conversation).where(Conversation.supporter_id == supporter.id)
            )
        ).one()
    assert convo.unread is True
    await say(ctx, "hello?", "telegram")  # now a coordinator answers, not the bot
    assert len(await replies(ctx)) == 4


async def test_invalid_name_is_asked_again(make_client: MakeClient) -> None:
    ctx = await configured(make_client)
    await say(ctx, "JOIN", "sms")
    await say(ctx, "12345", "sms")
    assert (await replies(ctx))[-1][0] == "Sorry, I didn't get that. What's your name?"
    await say(ctx, "Dorothy", "sms")
    supporter = await supporter_by_address(ctx, "sms", ADDRESSES["sms"])
    assert supporter.name == "Dorothy"


async def test_an_abandoned_onboarding_stops_capturing_messages(
    make_client: MakeClient,
) -> None:
    ctx = await configured(make_client, onboarding_expiry_hours=24)
    await say(ctx, "JOIN", "sms")
    ctx.clock.advance(hours=25)  # type: ignore[attr-defined]
    await say(ctx, "Can someone call me about Saturday?", "sms")
    supporter = await supporter_by_address(ctx, "sms", ADDRESSES["sms"])
    assert supporter.name == ADDRESSES["sms"]
    assert len(await replies(ctx)) == 1


async def new_team(ctx: AppContext, name: str) -> Team:
    async with ctx.sessions() as session:
        team = Team(name=name, created_at=ctx.clock())
        session.add(team)
        await session.commit()
        await session.refresh(team)
    return team


async def delete_team(ctx: AppContext, team: Team) -> None:
    async with ctx.sessions() as session:
        await session.delete(await session.get(Team, team.id))
        await session.commit()


async def test_a_team_created_before_the_answer_does_not_change_it(
    make_client: MakeClient,
) -> None:
    ctx = await configured(make_client)
    _, phone_bank = await add_teams(ctx)
    for channel in ("sms", "whatsapp"):
        await say(ctx, "JOIN", channel)
        await say(ctx, "Ada", channel)
    registration = await new_team(ctx, "Registration")  # while both think it over
    await say(ctx, "2", "sms")
    await say(ctx, "3", "whatsapp")  # not a number they were shown: asked again, afresh
    assert (await replies(ctx))[-1] == (
        "Sorry, I didn't get that. Which team would you like to join? "
        "1) Canvassing 2) Phone bank 3) Registration. Reply with a number.",
        "whatsapp",
        "auto_reply",
    )
    await say(ctx, "3", "whatsapp")
    by_sms = await supporter_by_address(ctx, "sms", ADDRESSES["sms"])
    by_whatsapp = await supporter_by_address(ctx, "whatsapp", ADDRESSES["whatsapp"])
    assert sorted(await memberships(ctx)) == sorted(
        [(by_sms.id, phone_bank.id), (by_whatsapp.id, registration.id)]
    )


async def test_the_team_picked_was_deleted_so_the_list_is_offered_again(
    make_client: MakeClient,
) -> None:
    ctx = await configured(make_client)
    canvassing, phone_bank = await add_teams(ctx)
    await say(ctx, "JOIN", "sms")
    await say(ctx, "Mary", "sms")
    await say(ctx, "7", "sms")  # one miss already: the next one would hand off
    await delete_team(ctx, phone_bank)
    await say(ctx, "2", "sms")
    assert (await replies(ctx))[-1][0] == (
        "Sorry, that team is no longer available. "
        "Which team would you like to join? 1) Canvassing. Reply with a number."
    )
    supporter = await supporter_by_address(ctx, "sms", ADDRESSES["sms"])
    state = await state_of(ctx, supporter.id)
    assert state is not None and (state.step, state.retries) == ("team", 0)
    assert await memberships(ctx) == []
    await say(ctx, "Canvassing!", "sms")  # by name, still
    assert await memberships(ctx) == [(supporter.id, canvassing.id)]


async def test_a_team_deleted_before_the_one_picked_does_not_shift_the_number(
    make_client: MakeClient,
) -> None:
    ctx = await configured(make_client)
    canvassing, phone_bank = await add_teams(ctx)
    await say(ctx, "JOIN", "sms")
    await say(ctx, "Mary", "sms")
    await delete_team(ctx, canvassing)
    await say(ctx, "2", "sms")
    supporter = await supporter_by_address(ctx, "sms", ADDRESSES["sms"])
    assert await memberships(ctx) == [(supporter.id, phone_bank.id)]
    assert (await replies(ctx))[-1][0] == "Welcome to Phone bank, Mary!"


async def test_a_state_from_before_offered_lists_counts_in_the_current_list(
    make_client: MakeClient,
) -> None:
    ctx = await configured(make_client)
    canvassing, phone_bank = await add_teams(ctx)
    await say(ctx, "JOIN", "sms")
    await say(ctx, "Mary", "sms")
    supporter = await supporter_by_address(ctx, "sms", ADDRESSES["sms"])
    async with ctx.sessions() as session:  # as a row written before the column existed
        state = await session.get(OnboardingState, supporter.id)
        assert state is not None and state.offered_teams == [canvassing.id, phone_bank.id]
        state.offered_teams = None
        session.add(state)
        await session.commit()
    await delete_team(ctx, canvassing)
    await say(ctx, "1", "sms")
    assert await memberships(ctx) == [(supporter.id, phone_bank.id)]
