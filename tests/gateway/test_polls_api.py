"""Polls over HTTP: the question goes out like an announcement, answers come back on any
channel (through ingestion), are tallied, and the last answer wins."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import httpx
import pytest

from channels.base import InboundMessage
from routing.inbound.store import ingest
from routing.organizing.polls import match_option, render_poll
from storage.models import Message, PollAnswer
from tests.conftest import FakeClock, bearer, new_key
from tests.gateway.seed import add_member, count, make_team, messages_of
from tests.routing.fake_adapter import FakeAdapter, make_dispatcher

API = "/api/v1"
_ids = itertools.count(1)


async def reply(ctx: Any, channel: str, address: str, body: str) -> None:
    event = InboundMessage(
        channel=channel,  # type: ignore[arg-type]
        address=address,
        provider_message_id=f"in-{next(_ids)}",
        body=body,
    )
    await ingest(ctx, [event])


@pytest.fixture
async def poll(client: httpx.AsyncClient, clock: FakeClock) -> dict[str, Any]:
    ctx = client.ctx  # type: ignore[attr-defined]
    ctx.registry.add(FakeAdapter(channels=("sms", "telegram")))
    team = await make_team(ctx, "North")
    ada = await add_member(ctx, {"sms": "+14155550101"}, teams=[team])
    bo = await add_member(ctx, {"telegram": "777"}, teams=[team])
    answer = await client.post(
        f"{API}/polls",
        json={
            "question": "Can you come on Saturday?",
            "options": ["Yes", "No", "Maybe later"],
            "audience": {"teams": ["North"]},
        },
    )
    assert answer.status_code == 202, answer.text
    assert await make_dispatcher(ctx, clock).run_once() == 2  # the poll reaches both
    return {"client": client, "ctx": ctx, "team": team, "ada": ada, "bo": bo, **answer.json()}


async def results(poll: dict[str, Any]) -> dict[str, Any]:
    answer = await poll["client"].get(f"{API}/polls/{poll['id']}")
    assert answer.status_code == 200
    data: dict[str, Any] = answer.json()
    return data


def tally(data: dict[str, Any]) -> list[int]:
    return [item["count"] for item in data["tally"]]


async def test_poll_goes_out_with_numbered_options(poll: dict[str, Any]) -> None:
    assert poll["recipients"] == 2 and poll["announcement_id"]
    sent = await messages_of(poll["ctx"], poll["announcement_id"])
    assert {m.channel for m in sent} == {"sms", "telegram"}
    assert all(m.kind == "poll" and m.status == "sent" for m in sent)
    assert sent[0].body == (
        "Can you come on Saturday?\n1) Yes\n2) No\n3) Maybe later\nReply with a number."
    )


async def test_answers_over_two_channels_are_tallied(poll: dict[str, Any]) -> None:
    ctx = poll["ctx"]
    await reply(ctx, "sms", "+14155550101", " 2 ")
    await reply(ctx, "telegram", "777", "maybe LATER!")
    data = await results(poll)
    assert tally(data) == [0, 1, 1]
    assert data["answers"] == 2 and data["by_channel"] == {"sms": 1, "telegram": 1}
    # The answers stay in the conversations as ordinary inbound messages.
    inbound = [m for m in await messages_of(ctx) if m.direction == "inbound"]
    assert [m.body for m in inbound] == [" 2 ", "maybe LATER!"]

    # Last answer wins.
    await reply(ctx, "sms", "+14155550101", "yes.")
    data = await results(poll)
    assert tally(data) == [1, 0, 1] and data["answers"] == 2
    assert await count(ctx, PollAnswer) == 2


async def test_non_answers_stay_messages(poll: dict[str, Any], clock: FakeClock) -> None:
    ctx = poll["ctx"]
    await reply(ctx, "sms", "+14155550101", "I'll ask my boss")
    await reply(ctx, "sms", "+14155550101", "7")
    assert tally(await results(poll)) == [0, 0, 0]
    assert await count(ctx, Message, Message.direction == "inbound") == 2
    # Someone the poll did not go to: their "1" is just a message.
    await reply(ctx, "sms", "+14155550199", "1")
    assert tally(await results(poll)) == [0, 0, 0]
    # A week later the poll is no longer open to replies.
    clock.advance(days=8)
    await reply(ctx, "telegram", "777", "1")
    assert tally(await results(poll)) == [0, 0, 0]


async def test_a_reply_before_the_poll_went_out_is_no_answer(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    ctx = client.ctx  # type: ignore[attr-defined]
    ctx.registry.add(FakeAdapter(channels=("sms",)))
    team = await make_team(ctx, "North")
    await add_member(ctx, {"sms": "+14155550101"}, teams=[team])
    created = await client.post(
        f"{API}/polls",
        json={
            "question": "Saturday?",
            "options": ["Yes", "No"],
            "audience": {"teams": ["North"]},
            "send_at": (clock() + timedelta(hours=2)).isoformat(),
        },
    )
    assert created.status_code == 202, created.text
    scheduled = {"client": client, "id": created.json()["id"]}
    dispatcher = make_dispatcher(ctx, clock)
    assert await dispatcher.run_once() == 0  # not due yet

    await reply(ctx, "sms", "+14155550101", "1")  # writes in before the poll is sent
    assert (await results(scheduled))["answers"] == 0

    clock.advance(hours=2)
    assert await dispatcher.run_once() == 1
    await reply(ctx, "sms", "+14155550101", "2")
    data = await results(scheduled)
    assert data["answers"] == 1 and tally(data) == [0, 1]


async def test_closed_poll_takes_no_answers(poll: dict[str, Any]) -> None:
    closed = await poll["client"].post(f"{API}/polls/{poll['id']}/close")
    assert closed.status_code == 200 and closed.json()["closed"] is True
    await reply(poll["ctx"], "sms", "+14155550101", "1")
    assert tally(await results(poll)) == [0, 0, 0]


async def test_stop_is_consent_not_an_answer(poll: dict[str, Any]) -> None:
    await reply(poll["ctx"], "sms", "+14155550101", "STOP")
    assert (await results(poll))["answers"] == 0


async def test_team_lead_sees_their_team_polls_only(poll: dict[str, Any]) -> None:
    client, ctx = poll["client"], poll["ctx"]
    other = await make_team(ctx, "South")
    theirs = bearer(await new_key(ctx, "team_lead", other))
    ours = bearer(await new_key(ctx, "team_lead", poll["team"]))
    assert (await client.get(f"{API}/polls/{poll['id']}", headers=theirs)).status_code == 404
    assert (await client.get(f"{API}/polls/{poll['id']}", headers=ours)).status_code == 200


async def test_poll_validation_and_idempotency(client: httpx.AsyncClient) -> None:
    ctx = client.ctx  # type: ignore[attr-defined]
    await make_team(ctx, "North")
    base = {"question": "Q?", "audience": {"teams": ["North"]}}
    for options in (["only"], [str(i) for i in range(11)], ["Yes", "yes"], ["Yes", " "]):
        answer = await client.post(f"{API}/polls", json={**base, "options": options})
        assert answer.status_code == 422, options
    headers = {"Idempotency-Key": "poll-1"}
    body = {**base, "options": ["Yes", "No"]}
    first = await client.post(f"{API}/polls", json=body, headers=headers)
    again = await client.post(f"{API}/polls", json=body, headers=headers)
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["id"] == first.json()["id"]
    other = await client.post(
        f"{API}/polls", json={**body, "options": ["Yes", "No", "Maybe"]}, headers=headers
    )
    assert other.status_code == 409


def test_match_option() -> None:
    options = ["Yes", "No", "Maybe later"]
    assert [match_option(text, options) for text in ("1", "#2", "3.", " 3 ")] == [0, 1, 2, 2]
    assert [match_option(text, options) for text in ("YES", "no!", "maybe, later")] == [0, 1, 2]
    assert [match_option(text, options) for text in ("0", "4", "yes please", "", "??")] == [
        None
    ] * 5
    assert render_poll("Q?", ["a", "b"]) == "Q?\n1) a\n2) b\nReply with a number."
