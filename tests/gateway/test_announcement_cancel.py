"""POST /api/v1/announcements/{id}/cancel over HTTP, with the dispatcher on fake adapters:
a scheduled announcement, one half sent, one mid fan-out, sends in flight at the moment
of the cancel (and results returning after their row is gone), polls and check-ins."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import col

from channels.base import InboundMessage, InvalidRecipient, Throttled
from routing.context import AppContext
from routing.inbound.store import ingest
from routing.organizing.checkins import run_due_checkins
from routing.outbound.fanout import FanoutPlan, fan_out, fan_out_batch, resume_pending_fanouts
from storage.models import Announcement, Message, OutboxItem
from tests.conftest import FakeClock, bearer, new_key
from tests.gateway.seed import add_member, bulk_members, count, make_team, messages_of
from tests.routing.fake_adapter import (
    FakeAdapter,
    attempts_of,
    load,
    make_dispatcher,
    outbox_of,
    until,
    with_adapters,
)
from tests.routing.fake_channel import outbound

API = "/api/v1"
PHONES = [f"+1415555020{n}" for n in range(4)]


@dataclass
class World:
    client: httpx.AsyncClient
    ctx: AppContext
    sms: FakeAdapter
    email: FakeAdapter
    north: int
    south: int
    members: list[int]  # North's reachable members, in supporter id order


@pytest.fixture
async def world(make_client, clock: FakeClock) -> World:
    """North: four members on sms (the second also has email) and one opted out;
    South: one member on sms. An admin client."""
    sms = FakeAdapter(channels=("sms",), provider="fake-sms")
    email = FakeAdapter(channels=("email",), provider="fake-email")
    client, ctx = await with_adapters(make_client, sms, email)
    client.headers.update(bearer(await new_key(ctx)))
    north, south = await make_team(ctx, "North"), await make_team(ctx, "South")
    members = []
    for n, phone in enumerate(PHONES):
        addresses = {"sms": phone, "email": "b@example.org"} if n == 1 else {"sms": phone}
        members.append(await add_member(ctx, addresses, teams=[north], name=f"N{n}"))
    await add_member(ctx, {"sms": "+14155550299"}, teams=[north], opted_out=True)
    await add_member(ctx, {"sms": "+14155550300"}, teams=[south])
    return World(client, ctx, sms, email, north, south, members)


def sms_reply(phone: str, body: str) -> InboundMessage:
    return InboundMessage(
        channel="sms", address=phone, provider_message_id=f"in-{phone}-{body}", body=body
    )


async def announce(world: World, team: str = "North", **extra: str) -> int:
    answer = await world.client.post(
        f"{API}/announcements",
        json={"body": "Rally at noon", "audience": {"teams": [team]}, **extra},
    )
    assert answer.status_code == 202, answer.text
    return int(answer.json()["id"])


async def cancel(
    world: World, announcement_id: int, headers: dict[str, str] | None = None
) -> httpx.Response:
    url = f"{API}/announcements/{announcement_id}/cancel"
    return await world.client.post(url, headers=headers)


async def test_cancel_before_send_at_sends_nothing(world: World, clock: FakeClock) -> None:
    later = clock() + timedelta(hours=5)
    announcement_id = await announce(world, send_at=later.isoformat())
    assert await count(world.ctx, OutboxItem) == 4

    answer = await cancel(world, announcement_id)
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert (data["id"], data["state"], data["recipients"]) == (announcement_id, "cancelled", 5)
    # The opted-out member's message was skipped before; the cancel stopped the other four.
    assert data["counts"] == {"skipped": 5} and data["cancelled"] == 4
    assert await count(world.ctx, OutboxItem) == 0
    stopped = [m for m in await messages_of(world.ctx, announcement_id) if m.error == "cancelled"]
    assert sorted(m.supporter_id for m in stopped) == world.members
    assert all(m.status == "skipped" for m in stopped)
    history = (await world.client.get(f"{API}/messages/{stopped[0].id}")).json()["history"]
    assert [(h["status"], h["error"]) for h in history] == [("skipped", "cancelled")]

    again = await cancel(world, announcement_id)
    assert again.status_code == 200 and again.json() == data
    shown = (await world.client.get(f"{API}/announcements/{announcement_id}")).json()
    assert shown["state"] == "cancelled" and shown["counts"] == {"skipped": 5}

    clock.set(later + timedelta(minutes=1))
    assert await make_dispatcher(world.ctx, clock).run_until_idle() == 0
    assert world.sms.calls == [] and world.email.calls == []
    assert await resume_pending_fanouts(world.ctx) == []


async def test_cancel_half_sent_keeps_the_sent_and_stops_the_rest(
    world: World, clock: FakeClock
) -> None:
    announcement_id = await announce(world)
    dispatcher = make_dispatcher(world.ctx, clock)
    assert await dispatcher.run_once(limit=2) == 2
    assert [m.to for _, m in world.sms.accepted] == PHONES[:2]

    answer = await cancel(world, announcement_id)
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert data["state"] == "cancelled" and data["recipients"] == 5
    assert data["counts"] == {"sent": 2, "skipped": 3} and data["cancelled"] == 2
    assert data["by_channel"] == {"sms": {"sent": 2, "skipped": 2}, "none": {"skipped": 1}}

    assert await dispatcher.run_until_idle() == 0
    assert [m.to for _, m in world.sms.accepted] == PHONES[:2]
    assert await count(world.ctx, OutboxItem) == 0


async def test_nothing_left_to_cancel_is_409(world: World, clock: FakeClock) -> None:
    announcement_id = await announce(world, team="South")
    assert await make_dispatcher(world.ctx, clock).run_until_idle() == 1
    answer = await cancel(world, announcement_id)
    assert answer.status_code == 409
    assert "nothing left to cancel" in answer.json()["detail"]
    shown = (await world.client.get(f"{API}/announcements/{announcement_id}")).json()
    assert shown["state"] == "fanned_out" and shown["counts"] == {"sent": 1}


async def test_cancel_during_fan_out_stops_it(world: World, clock: FakeClock) -> None:
    ctx = world.ctx
    team = await make_team(ctx, "Everyone")
    await bulk_members(ctx, 25, team_id=team)
    async with ctx.sessions() as session:
        pending = Announcement(
            body="Phone bank tonight",
            audience={"teams": [team]},
            team_scope_id=team,
            recipients=25,
            created_at=clock(),
        )
        session.add(pending)
        await session.commit()
        assert pending.id is not None
        announcement_id = pending.id
    plan = FanoutPlan.of(pending)
    assert not await fan_out_batch(ctx, plan, batch_size=10)  # a fan-out one batch in

    answer = await cancel(world, announcement_id)
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert data["state"] == "cancelled"
    assert data["recipients"] == 10 and data["counts"] == {"skipped": 10}
    assert data["cancelled"] == 10
    # The running fan-out's next batch sees the state and ends, writing nothing.
    assert await fan_out_batch(ctx, plan, batch_size=10)
    assert await fan_out(ctx, announcement_id, batch_size=10) == 0
    assert await resume_pending_fanouts(ctx) == []
    assert await count(ctx, Message, col(Message.announcement_id) == announcement_id) == 10
    assert await count(ctx, OutboxItem) == 0
    assert await make_dispatcher(ctx, clock).run_until_idle() == 0
    assert world.sms.calls == []


async def test_team_lead_cancels_their_team_s_only(world: World) -> None:
    ctx = world.ctx
    lead = bearer(await new_key(ctx, "team_lead", world.north))
    theirs = await announce(world, team="South")
    assert (await cancel(world, theirs, headers=lead)).status_code == 404
    assert (await cancel(world, 999_999, headers=lead)).status_code == 404
    assert (await cancel(world, 999_999)).status_code == 404
    shown = (await world.client.get(f"{API}/announcements/{theirs}")).json()
    assert shown["state"] == "fanned_out" and shown["counts"] == {"queued": 1}
    assert await count(ctx, OutboxItem) == 1

    ours = await world.client.post(
        f"{API}/announcements", json={"body": "x", "audience": {"teams": ["North"]}}, headers=lead
    )
    answer = await cancel(world, ours.json()["id"], headers=lead)
    assert answer.status_code == 200 and answer.json()["cancelled"] == 4
    assert await count(ctx, OutboxItem) == 1  # South's is still there


async def test_sends_in_flight_finish_and_nothing_more_goes(world: World, clock: FakeClock) -> None:
    """At the cancel, three sends are at the provider: one is accepted (recorded as sent,
    never re-sent), one fails for good (its fallback to email must not go out), one is
    throttled (its retry must not go out). The fourth, not claimed yet, is stopped."""
    sms, ctx = world.sms, world.ctx
    announcement_id = await announce(world)
    messages = {m.supporter_id: m.id for m in await messages_of(ctx, announcement_id)}
    accepted, fell_back, throttled, unclaimed = (messages[s] for s in world.members)
    assert accepted is not None and fell_back is not None and throttled is not None
    sms.hold_after_accept = {PHONES[0]}
    sms.hold_before_accept = {PHONES[1], PHONES[2]}
    sms.fail(PHONES[1], InvalidRecipient("landline", code="30006"))
    sms.fail(PHONES[2], Throttled("slow down", retry_after=30))
    dispatcher = make_dispatcher(ctx, clock)
    in_flight = asyncio.create_task(dispatcher.run_once(limit=3))

    async def held() -> bool:
        return sms.held == 3

    await until(held)
    answer = await cancel(world, announcement_id)
    assert answer.status_code == 200, answer.text
    assert answer.json()["counts"] == {"queued": 3, "skipped": 2}
    assert answer.json()["cancelled"] == 1
    assert (await load(ctx, unclaimed)).status == "skipped"

    sms.release.set()
    assert await asyncio.wait_for(in_flight, 10) == 3
    sent = await load(ctx, accepted)
    assert (sent.status, sent.provider_message_id) == ("sent", sms.accepted[0][0])
    assert (await load(ctx, fell_back)).channel == "email"  # re-queued, not yet claimed
    clock.advance(seconds=300)  # past the retry's due time
    assert await dispatcher.run_until_idle() == 2
    for message_id in (fell_back, throttled):
        message = await load(ctx, message_id)
        assert (message.status, message.error) == ("skipped", "cancelled"), message_id
        assert await outbox_of(ctx, message_id) is None
    assert world.email.calls == []
    assert [m.to for m in sms.calls] == PHONES[:3]  # one try each, nothing re-sent
    assert len(sms.sent_to(PHONES[0])) == 1
    final = (await world.client.get(f"{API}/announcements/{announcement_id}")).json()
    assert final["counts"] == {"sent": 1, "skipped": 4}
    again = await cancel(world, announcement_id)
    assert again.status_code == 200 and again.json()["cancelled"] == 3


async def test_results_returning_after_their_row_is_gone_change_nothing(
    world: World, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A dispatcher stalls past its lease; the cancel leaves its rows (still leased) and
    another dispatcher claims them and skips them. When the stalled sends come back (one
    accepted, one a permanent failure), the recorder finds no row: no crash, no message
    moved on, no outbox row re-created, no fallback sent."""
    sms, ctx = world.sms, world.ctx
    announcement_id = await announce(world)
    messages = {m.supporter_id: m.id for m in await messages_of(ctx, announcement_id)}
    accepted, failing = messages[world.members[0]], messages[world.members[1]]
    assert accepted is not None and failing is not None
    sms.hold_before_accept = {PHONES[0], PHONES[1]}
    sms.fail(PHONES[1], InvalidRecipient("landline", code="30006"))
    first = make_dispatcher(ctx, clock, owner="first")
    stalled = asyncio.create_task(first.run_once(limit=2))

    async def held() -> bool:
        return sms.held == 2

    await until(held)
    clock.advance(seconds=61)  # the first dispatcher's leases run out
    answer = await cancel(world, announcement_id)
    assert answer.status_code == 200
    assert answer.json()["counts"] == {"queued": 2, "skipped": 3}
    second = make_dispatcher(ctx, clock, owner="second")
    assert await second.run_once() == 2
    assert await count(ctx, OutboxItem) == 0

    caplog.set_level(logging.INFO)
    sms.release.set()
    assert await asyncio.wait_for(stalled, 10) == 2
    assert "dispatching outbox row" not in caplog.text  # the recorder did not fail
    for message_id in (accepted, failing):
        message = await load(ctx, message_id)
        assert (message.status, message.channel, message.error) == ("skipped", "sms", "cancelled")
    assert await count(ctx, OutboxItem) == 0
    assert world.email.calls == [] and len(sms.calls) == 2
    # What the provider accepted stays on the attempt, for audit.
    [attempt] = await attempts_of(ctx, accepted)
    assert attempt.provider_message_id == sms.accepted[0][0]
    assert await second.run_until_idle() == 0


async def test_polls_and_check_in_runs_cancel_alike(world: World, clock: FakeClock) -> None:
    client, ctx = world.client, world.ctx
    poll = await client.post(
        f"{API}/polls",
        json={"question": "Saturday?", "options": ["Yes", "No"], "audience": {"teams": ["North"]}},
    )
    assert poll.status_code == 202, poll.text
    answer = await cancel(world, poll.json()["announcement_id"])
    assert answer.status_code == 200 and answer.json()["kind"] == "poll"
    assert answer.json()["cancelled"] == 4
    assert (await client.get(f"{API}/polls/{poll.json()['id']}")).json()["state"] == "cancelled"

    created = await client.post(
        f"{API}/teams/North/checkins",
        json={"weekday": 2, "local_time": "18:00", "timezone": "UTC", "prompt": "How was it?"},
    )
    assert created.status_code == 201, created.text
    clock.set(datetime(2026, 3, 4, 18, 0, tzinfo=UTC))
    [run] = (await run_due_checkins(ctx)).runs
    answer = await cancel(world, run.announcement_id)
    assert answer.status_code == 200 and answer.json()["kind"] == "checkin"
    assert answer.json()["cancelled"] == 4
    clock.advance(minutes=5)
    assert (await run_due_checkins(ctx)).runs == []  # the cancelled run does not run again
    assert await resume_pending_fanouts(ctx) == []
    assert await make_dispatcher(ctx, clock).run_until_idle() == 0
    assert world.sms.calls == []


async def post_poll(world: World) -> dict[str, Any]:
    """A two-option poll to North; the API's answer."""
    created = await world.client.post(
        f"{API}/polls",
        json={"question": "Saturday?", "options": ["Yes", "No"], "audience": {"teams": ["North"]}},
    )
    assert created.status_code == 202, created.text
    poll: dict[str, Any] = created.json()
    return poll


async def test_cancelling_a_poll_closes_it_to_those_it_reached(
    world: World, clock: FakeClock
) -> None:
    client, ctx = world.client, world.ctx
    poll = await post_poll(world)
    dispatcher = make_dispatcher(ctx, clock)
    assert await dispatcher.run_once(limit=2) == 2  # the question reaches two members
    await ingest(ctx, [sms_reply(PHONES[0], "1")])  # answered while the poll is open

    answer = await cancel(world, poll["announcement_id"])
    assert answer.status_code == 200, answer.text
    assert answer.json()["cancelled"] == 2
    shown = (await client.get(f"{API}/polls/{poll['id']}")).json()
    assert (shown["state"], shown["closed"]) == ("cancelled", True)

    # Those it reached can no longer answer, nor change their answer: only messages now.
    await ingest(ctx, [sms_reply(PHONES[1], "2"), sms_reply(PHONES[0], "2")])
    shown = (await client.get(f"{API}/polls/{poll['id']}")).json()
    assert [t["count"] for t in shown["tally"]] == [1, 0] and shown["answers"] == 1
    assert await count(ctx, Message, Message.direction == "inbound") == 3
    assert await dispatcher.run_until_idle() == 0
    assert [m.to for _, m in world.sms.accepted] == PHONES[:2]


async def start_run_with_nudges(world: World, clock: FakeClock) -> int:
    """A check-in run on North with a nudge for each of its four reachable members, queued
    before its prompts (so claimed first); the run's announcement id."""
    created = await world.client.post(
        f"{API}/teams/North/checkins",
        json={
            "weekday": 2,
            "local_time": "18:00",
            "timezone": "UTC",
            "prompt": "How was it?",
            "inactive_days": 1,
            "nudge_text": "Hi {name}, we miss you!",
        },
    )
    assert created.status_code == 201, created.text
    clock.set(datetime(2026, 3, 11, 18, 0, tzinfo=UTC))  # a week after the members joined
    [run] = (await run_due_checkins(world.ctx)).runs
    assert (run.prompts, run.nudges) == (4, 4)
    return run.announcement_id


async def test_cancelling_a_check_in_run_stops_its_nudges(world: World, clock: FakeClock) -> None:
    """Nudges are written by the run, so its cancel stops them like the prompt: the queued
    ones are skipped, one already sent stays sent, and members whose nudge was stopped are
    nudged by the next run (they never got one this quiet spell)."""
    client, ctx = world.client, world.ctx
    run_id = await start_run_with_nudges(world, clock)
    dispatcher = make_dispatcher(ctx, clock)
    assert await dispatcher.run_once(limit=1) == 1  # the first nudge goes out
    assert [m.body for _, m in world.sms.accepted] == ["Hi N0, we miss you!"]

    answer = await cancel(world, run_id)
    assert answer.status_code == 200, answer.text
    assert (answer.json()["cancelled"], answer.json()["cancelled_nudges"]) == (4, 3)
    assert await count(ctx, OutboxItem) == 0
    nudges = {m.supporter_id: m for m in await outbound(ctx, "nudge")}
    assert [nudges[s].status for s in world.members] == ["sent", "skipped", "skipped", "skipped"]
    stopped = (await client.get(f"{API}/messages/{nudges[world.members[1]].id}")).json()
    assert (stopped["error"], stopped["sent_by"]) == (
        "cancelled",
        f"checkin_run:{run_id}",
    )
    assert [(h["status"], h["error"]) for h in stopped["history"]] == [("skipped", "cancelled")]
    assert await dispatcher.run_until_idle() == 0
    assert [m.body for _, m in world.sms.accepted] == ["Hi N0, we miss you!"]

    again = await cancel(world, run_id)
    assert again.status_code == 200 and again.json()["cancelled_nudges"] == 3
    stopped = (await client.get(f"{API}/messages/{nudges[world.members[1]].id}")).json()
    assert len(stopped["history"]) == 1

    clock.set(datetime(2026, 3, 18, 18, 0, tzinfo=UTC))  # next week's run
    [later] = (await run_due_checkins(ctx)).runs
    assert later.nudges == 3  # N1..N3 again; N0 was nudged this quiet spell
    assert await dispatcher.run_until_idle() == 7
    sent = sorted(m.body for _, m in world.sms.accepted if "miss you" in m.body)
    assert sent == [f"Hi N{n}, we miss you!" for n in (0, 1, 2, 3)]


async def test_cancelling_another_announcement_leaves_a_run_s_nudges(
    world: World, clock: FakeClock
) -> None:
    """Only the cancel of the run's own prompt stops its nudges."""
    ctx = world.ctx
    await start_run_with_nudges(world, clock)
    other = await announce(world)
    answer = await cancel(world, other)
    assert answer.status_code == 200 and answer.json()["cancelled_nudges"] == 0
    assert [m.status for m in await outbound(ctx, "nudge")] == ["queued"] * 4
    assert await count(ctx, OutboxItem) == 8  # the run's four prompts and four nudges


async def test_cancel_after_the_prompts_went_out_stops_the_queued_nudges(
    world: World, clock: FakeClock
) -> None:
    """Every prompt is sent, every nudge is waiting for its retry: the cancel still has
    something to stop, so 200 and the run is cancelled (was 409, nudges kept)."""
    sms, ctx = world.sms, world.ctx
    announcement_id = await start_run_with_nudges(world, clock)
    for phone in PHONES:  # each member's first send is their nudge
        sms.fail(phone, Throttled("slow down", retry_after=30))
    dispatcher = make_dispatcher(ctx, clock)
    assert await dispatcher.run_once() == 8
    assert sorted(m.body for _, m in sms.accepted) == ["How was it?"] * 4

    answer = await cancel(world, announcement_id)
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert (data["state"], data["counts"]) == ("cancelled", {"sent": 4, "skipped": 1})
    assert (data["cancelled"], data["cancelled_nudges"]) == (0, 4)
    assert await count(ctx, OutboxItem) == 0
    assert [(m.status, m.error) for m in await outbound(ctx, "nudge")] == [
        ("skipped", "cancelled")
    ] * 4
    clock.advance(seconds=300)  # past the retries' due time
    assert await dispatcher.run_until_idle() == 0
    assert len(sms.accepted) == 4
    again = await cancel(world, announcement_id)
    assert again.status_code == 200 and again.json() == data


async def test_a_nudge_at_the_provider_at_the_cancel_is_not_retried_nor_falls_back(
    world: World, clock: FakeClock
) -> None:
    """The prompts are sent; three nudges (second tries) are at the provider when the run is
    cancelled, the fourth waits for its retry. One is accepted (stays sent), one fails for
    good (its fallback to email must not go out), one is throttled (its retry must not go
    out): nudges carry no announcement id, so the claim finds their run by `sent_by`."""
    sms, ctx = world.sms, world.ctx
    announcement_id = await start_run_with_nudges(world, clock)
    nudges = {m.supporter_id: m.id for m in await outbound(ctx, "nudge")}
    accepted, fell_back, throttled, waiting = (nudges[s] for s in world.members)
    assert None not in (accepted, fell_back, throttled, waiting)
    for phone in PHONES:
        sms.fail(phone, Throttled("slow down", retry_after=30))
    dispatcher = make_dispatcher(ctx, clock)
    assert await dispatcher.run_once() == 8  # the prompts go out, the nudges are put off
    clock.advance(seconds=60)
    sms.hold_before_accept = set(PHONES[:3])
    sms.fail(PHONES[1], InvalidRecipient("landline", code="30006"))
    sms.fail(PHONES[2], Throttled("slow down", retry_after=30))
    in_flight = asyncio.create_task(dispatcher.run_once(limit=3))

    async def held() -> bool:
        return sms.held == 3

    await until(held)
    answer = await cancel(world, announcement_id)
    assert answer.status_code == 200, answer.text
    assert answer.json()["state"] == "cancelled"
    assert answer.json()["cancelled_nudges"] == 1
    stopped = await load(ctx, waiting)
    assert (stopped.status, stopped.error) == ("skipped", "cancelled")

    sms.release.set()
    assert await asyncio.wait_for(in_flight, 10) == 3
    assert (await load(ctx, accepted)).status == "sent"
    assert (await load(ctx, fell_back)).channel == "email"  # re-queued, not yet claimed
    clock.advance(seconds=300)  # past the retry's due time
    assert await dispatcher.run_until_idle() == 2
    for message_id in (fell_back, throttled):
        message = await load(ctx, message_id)
        assert (message.status, message.error) == ("skipped", "cancelled"), message_id
        assert await outbox_of(ctx, message_id) is None
    assert world.email.calls == []
    assert len(sms.calls) == 8 + 3  # nothing after the cancel
    final = await cancel(world, announcement_id)
    assert final.status_code == 200 and final.json()["cancelled_nudges"] == 3


async def test_cancel_after_a_poll_went_out_closes_it(world: World, clock: FakeClock) -> None:
    client, ctx = world.client, world.ctx
    poll = await post_poll(world)
    assert await make_dispatcher(ctx, clock).run_until_idle() == 4

    answer = await cancel(world, poll["announcement_id"])
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert (data["state"], data["counts"], data["cancelled"]) == (
        "cancelled",
        {"sent": 4, "skipped": 1},
        0,
    )
    shown = (await client.get(f"{API}/polls/{poll['id']}")).json()
    assert (shown["state"], shown["closed"]) == ("cancelled", True)
    await ingest(ctx, [sms_reply(PHONES[0], "1")])
    shown = (await client.get(f"{API}/polls/{poll['id']}")).json()
    assert shown["answers"] == 0


async def test_a_closed_poll_or_a_finished_run_has_nothing_left_to_cancel(
    world: World, clock: FakeClock
) -> None:
    client, ctx = world.client, world.ctx
    poll = await post_poll(world)
    assert (await client.post(f"{API}/polls/{poll['id']}/close")).status_code == 200
    run_id = await start_run_with_nudges(world, clock)
    assert await make_dispatcher(ctx, clock).run_until_idle() == 12  # 4 questions, 4 + 4

    for announcement_id in (poll["announcement_id"], run_id):
        answer = await cancel(world, announcement_id)
        assert answer.status_code == 409, answer.text
        assert "nothing left to cancel" in answer.json()["detail"]
        shown = (await client.get(f"{API}/announcements/{announcement_id}")).json()
        assert (shown["state"], shown["counts"]) == ("fanned_out", {"sent": 4, "skipped": 1})
