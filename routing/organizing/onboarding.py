"""Onboarding: JOIN (or Telegram /start) → name → team → welcome (→ the next intake calls,
routing/organizing/onboarding_intake.py), as a short conversation.

The state lives in `OnboardingState` (one row per supporter). Steps: "name", "team",
"intake" (when intake calls are coming up), then "done", or "handoff" when two answers
in a row made no sense and a coordinator takes over (the conversation stays unread). The
state remembers which teams the team question numbered, so an answer given days later
means the team the supporter was shown even if teams were added, renamed or deleted
since. Replies go out on the channel the supporter wrote from.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from datetime import timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from channels.base import InboundMessage
from routing.config import RoutingSettings
from routing.context import AppContext
from routing.organizing.automation import Arrival, Awaiting, Inbound, supporter_ids
from routing.organizing.keywords import keyword_word
from routing.organizing.onboarding_intake import answer_intake, intake_offer
from routing.outbound.queue import PRIORITY_REPLY, queue_message
from storage.models import OnboardingState, Supporter, Team, TeamMembership

log = logging.getLogger(__name__)

ACTIVE_STEPS = ("name", "team", "intake")
MAX_NAME_LENGTH = 80
_NUMBER = re.compile(r"^\s*#?\s*(\d{1,3})\s*[.)]?\s*$")


def is_join(settings: RoutingSettings, event: InboundMessage) -> bool:
    """The join keyword as the whole message, or a bare Telegram /start."""
    word = keyword_word(event.body)
    if word is None:
        return False
    if event.channel == "telegram" and word == "start" and event.body.strip().startswith("/"):
        return not event.start_payload
    return word == settings.join_keyword.strip().casefold()


def fill(template: str, **values: str) -> str:
    """Fill {org}/{name}/{team} placeholders; anything else in the text stays as written."""
    for key, value in values.items():
        template = template.replace("{" + key + "}", value)
    return template


def clean_name(text: str | None) -> str | None:
    """A plausible name from an answer, else None (empty, too long, or no letters)."""
    name = " ".join((text or "").split())
    if not name or len(name) > MAX_NAME_LENGTH or not any(c.isalpha() for c in name):
        return None
    return name


async def list_teams(session: AsyncSession) -> list[Team]:
    return list((await session.exec(select(Team).order_by(col(Team.id)))).all())


def answer_number(text: str | None) -> int | None:
    number = _NUMBER.match((text or "").strip())
    return int(number.group(1)) if number else None


def pick_team(teams: list[Team], text: str | None, offered: list[int] | None) -> Team | None:
    """The team an answer names: its number in the list the supporter was shown (`offered`,
    team ids; None: the current list), or its name (any case)."""
    number = answer_number(text)
    if number is not None:
        ids: Sequence[int | None] = [team.id for team in teams] if offered is None else offered
        team_id = ids[number - 1] if 0 < number <= len(ids) else None
        return next((team for team in teams if team.id == team_id), None)
    folded = " ".join((text or "").strip().casefold().split()).strip(".!")
    for team in teams:
        if team.name.casefold() == folded:
            return team
    return None


def offered_but_gone(offered: list[int] | None, text: str | None) -> bool:
    """Whether an answer is a number the supporter was offered (then if pick_team finds no
    team for it, that team was deleted since)."""
    number = answer_number(text)
    return offered is not None and number is not None and 0 < number <= len(offered)


def team_question(teams: list[Team]) -> str:
    options = " ".join(f"{i}) {team.name}" for i, team in enumerate(teams, start=1))
    return f"Which team would you like to join? {options}. Reply with a number."


def ask_team(state: OnboardingState, teams: list[Team]) -> str:
    """The team question, remembering which team each of its numbers stands for."""
    state.offered_teams = [team.id for team in teams if team.id is not None]
    return team_question(teams)


def team_welcome(team: Team, supporter: Supporter) -> str:
    text = team.welcome_text or f"Welcome to {team.name}, {supporter.name}!"
    text = fill(text, name=supporter.name, team=team.name)
    if team.orientation_call:
        text += f"\nNext orientation call: {team.orientation_call}"
    return text


async def reply(
    session: AsyncSession, ctx: AppContext, supporter: Supporter, channel: str, body: str
) -> None:
    await queue_message(
        session, ctx, supporter, body, kind="auto_reply", priority=PRIORITY_REPLY, channel=channel
    )


class Onboarding:
    """JOIN (or a bare Telegram /start) starts it; the supporter's next answers advance it."""

    def __init__(self) -> None:
        # Anyone with an onboarding state (a superset of those mid-way: cheap for a batch).
        statement = select(col(OnboardingState.supporter_id)).where(
            col(OnboardingState.supporter_id).in_(supporter_ids())
        )
        self.awaiting: Awaiting | None = Awaiting(statement)

    def might_react(self, arrival: Arrival) -> bool:
        return is_join(arrival.settings, arrival.event)

    async def react(self, session: AsyncSession, ctx: AppContext, inbound: Inbound) -> bool:
        """Start or advance onboarding; True when the message was an onboarding step."""
        event, supporter = inbound.event, inbound.supporter
        if supporter.opted_out:
            return False
        assert supporter.id is not None
        now = ctx.clock()
        state = await session.get(OnboardingState, supporter.id)
        if is_join(ctx.settings, event):
            if state is None:
                state = OnboardingState(supporter_id=supporter.id, step="name", updated_at=now)
            state.step, state.retries, state.channel = "name", 0, event.channel
            state.updated_at = now
            session.add(state)
            await reply(
                session,
                ctx,
                supporter,
                event.channel,
                fill(ctx.settings.welcome_text, org=ctx.settings.org_name),
            )
            log.info("onboarding started: supporter=%s channel=%s", supporter.id, event.channel)
            return True
        if state is None or state.step not in ACTIVE_STEPS:
            return False
        if now - state.updated_at > timedelta(hours=ctx.settings.onboarding_expiry_hours):
            return False  # abandoned long ago: this message is ordinary conversation
        state.channel = event.channel
        state.updated_at = now
        session.add(state)
        if state.step == "intake":
            number = answer_number(event.body)
            return await answer_intake(session, ctx, supporter, state, inbound.message, number)
        if state.step == "name":
            await answer_name(session, ctx, supporter, state, event)
        else:
            await answer_team(session, ctx, supporter, state, event)
        return True


ONBOARDING = Onboarding()


async def answer_name(
    session: AsyncSession,
    ctx: AppContext,
    supporter: Supporter,
    state: OnboardingState,
    event: InboundMessage,
) -> None:
    name = clean_name(event.body)
    if name is None:
        await invalid_answer(session, ctx, supporter, state, event, "What's your name?")
        return
    supporter.name = name
    supporter.updated_at = ctx.clock()
    session.add(supporter)
    state.retries = 0
    teams = await list_teams(session)
    if teams:
        state.step = "team"
        await reply(session, ctx, supporter, event.channel, ask_team(state, teams))
        return
    done = fill(ctx.settings.onboarding_done_text, name=name, org=ctx.settings.org_name)
    await finish(session, ctx, supporter, state, event.channel, done)


async def finish(
    session: AsyncSession,
    ctx: AppContext,
    supporter: Supporter,
    state: OnboardingState,
    channel: str,
    text: str,
) -> None:
    """Onboarding is done: say so, offering the next intake calls if there are any."""
    offer = await intake_offer(session, ctx, supporter, state, ctx.clock())
    state.step = "intake" if offer else "done"
    await reply(session, ctx, supporter, channel, f"{text}\n{offer}" if offer else text)


async def answer_team(
    session: AsyncSession,
    ctx: AppContext,
    supporter: Supporter,
    state: OnboardingState,
    event: InboundMessage,
) -> None:
    teams = await list_teams(session)
    if not teams:  # the teams went away mid-conversation: nothing left to choose
        state.step = "done"
        done = fill(
            ctx.settings.onboarding_done_text, name=supporter.name, org=ctx.settings.org_name
        )
        await reply(session, ctx, supporter, event.channel, done)
        return
    team = pick_team(teams, event.body, state.offered_teams)
    if team is None and offered_but_gone(state.offered_teams, event.body):
        # A sensible answer to the list it was shown: not a miss, so no step to a handoff.
        state.retries = 0
        gone = f"Sorry, that team is no longer available. {ask_team(state, teams)}"
        await reply(session, ctx, supporter, event.channel, gone)
        return
    if team is None:
        await invalid_answer(session, ctx, supporter, state, event, ask_team(state, teams))
        return
    assert supporter.id is not None and team.id is not None
    if await session.get(TeamMembership, (supporter.id, team.id)) is None:
        session.add(TeamMembership(supporter_id=supporter.id, team_id=team.id))
    state.retries = 0
    await finish(session, ctx, supporter, state, event.channel, team_welcome(team, supporter))
    log.info("onboarding done: supporter=%s team=%s", supporter.id, team.id)


async def invalid_answer(
    session: AsyncSession,
    ctx: AppContext,
    supporter: Supporter,
    state: OnboardingState,
    event: InboundMessage,
    question: str,
) -> None:
    """Ask once more; after a second miss hand the conversation to a coordinator."""
    if state.retries < 1:
        state.retries += 1
        await reply(session, ctx, supporter, event.channel, f"Sorry, I didn't get that. {question}")
        return
    state.step = "handoff"
    log.info("onboarding handed to a coordinator: supporter=%s", supporter.id)
    await reply(session, ctx, supporter, event.channel, ctx.settings.onboarding_handoff_text)
