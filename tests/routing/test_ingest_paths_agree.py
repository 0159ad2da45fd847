"""Every way of storing webhooks ends in the same rows (a seeded, randomized differential
test): group commit with the SQLite lane, group commit without it
(RALLYPOINT_SQLITE_LANE=false: SQLAlchemy, set-based), and one request at a time
(`routing.inbound.store.ingest`). Each seed is one reproducible sequence of webhook
batches: new and known supporters on four channels, provider retries, consent keywords,
JOIN and a name, poll answers, delivery callbacks in any order, errors and unknown
attempts. Rows are compared without their ids (references are replaced by what they
point at), since the lane commits its part of a batch before the rest."""

from __future__ import annotations

import asyncio
import random
import shutil
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import SQLModel, select

from channels.base import (
    Channel,
    InboundMessage,
    InvalidRecipient,
    SendError,
    StatusUpdate,
    WebhookEvent,
)
from gateway.app import build_context, shutdown
from routing.context import AppContext
from routing.inbound.batch import batcher_for, submit
from routing.inbound.store import IngestReport, ingest
from routing.webhooks.events import EVENT_TYPES, join_events, refresh
from storage.models import Announcement, Message, Poll, Team, WebhookSubscription
from tests.conftest import PG_URL, FakeClock, make_settings
from tests.routing.fake_adapter import FakeAdapter, add_supporter, sent_message

pytestmark = pytest.mark.skipif(bool(PG_URL), reason="compares fresh SQLite files")

Batch = list[list[WebhookEvent]]
SEEDS = range(8)

# Supporters the world starts with: (channel, address, name).
KNOWN: list[tuple[Channel, str, str]] = [
    ("sms", "+14155550001", "Ada"),
    ("whatsapp", "+14155550002", "Bo"),
    ("telegram", "700001", "Cy"),
    ("email", "dee@example.org", "Dee"),
]
NEW: list[tuple[Channel, str]] = [
    ("sms", "+14155550011"),
    ("whatsapp", "+14155550011"),  # the same phone on the other phone channel
    ("sms", "+14155550012"),
    ("whatsapp", "+14155550002"),  # Bo, writing on whatsapp as known
    ("sms", "+14155550002"),  # Bo's phone by sms: a new address for a known supporter
    ("telegram", "700002"),
    ("email", "eve@example.org"),
]
# What supporters write, and how often (keywords are rarer than conversation).
BODIES = {
    "hello": 4,
    "see you saturday": 3,
    "STOP": 1,
    "stop!": 1,
    "START": 1,
    "HELP": 1,
    "JOIN": 3,
    "Grace Hopper": 3,
    "1": 3,
    "2": 2,
    "Yes": 2,
    "North": 2,
    "/start": 1,
    "": 1,
}
# Outbound messages the world has sent (their attempts await callbacks): (channel, sid, to).
SENT: list[tuple[Channel, str, str]] = [
    ("sms", "SMout1", "+14155550001"),
    ("whatsapp", "wamid.out2", "+14155550002"),
    ("sms", "SMpoll", "+14155550001"),  # the poll Ada was sent
]
STATUSES = ["queued", "sent", "delivered", "read", "failed", "undelivered"]


def webhooks(seed: int) -> list[Batch]:
    """A reproducible sequence of webhook batches (each a list of requests)."""
    rng = random.Random(seed)
    inbound: list[InboundMessage] = []
    people = [(c, a) for c, a, _ in KNOWN] + NEW
    count = 0

    def event() -> WebhookEvent:
        nonlocal count
        roll = rng.random()
        if roll < 0.15 and inbound:
            return rng.choice(inbound)  # the provider retries
        if roll < 0.40:
            channel, sid, _ = rng.choice([*SENT, ("sms", "SMnobody", "")])
            # The poll stays open (reached, never failed) so that it can be answered.
            status = rng.choice(STATUSES[:4] if sid == "SMpoll" else STATUSES)
            failure: SendError | None = None
            code = None
            if status in ("failed", "undelivered") and rng.random() < 0.5:
                code, failure = "30003", InvalidRecipient("unreachable")
            return StatusUpdate(channel, sid, status, error_code=code, failure=failure)  # type: ignore[arg-type]
        count += 1
        # Half the time the last sender writes again: onboarding and polls are conversations.
        # Some write once, plainly (most traffic: what the lane is for).
        if rng.random() < 0.2:
            channel, address = rng.choice(["sms", "whatsapp"]), f"+1415555{9000 + count:04d}"
        elif not inbound or rng.random() < 0.5:
            channel, address = rng.choice(people)
        else:
            channel, address = inbound[-1].channel, inbound[-1].address
        body = rng.choices(list(BODIES), weights=list(BODIES.values()))[0]
        subject = None
        if channel == "email" and rng.random() < 0.3:
            body, subject = "", rng.choice(["STOP", "Re: Saturday"])
        message = InboundMessage(
            channel=channel,
            address=address,
            provider_message_id=f"{channel}-{seed}-{count}",
            body=body,
            subject=subject,
            profile_name=rng.choice([None, "Profile Name"]),
        )
        inbound.append(message)
        return message

    return [
        [[event() for _ in range(rng.choice([1, 1, 1, 2, 3]))] for _ in range(rng.randint(1, 12))]
        for _ in range(rng.randint(3, 6))
    ]


async def world(ctx: AppContext) -> None:
    """Known supporters, a team to join, two sent messages and a poll sent to Ada."""
    ids = [await add_supporter(ctx, {c: a}, name=n) for c, a, n in KNOWN]
    for channel, sid, to in SENT:
        await sent_message(ctx, ids[0] if to == KNOWN[0][1] else ids[1], channel, to, sid)
    now = ctx.clock()
    async with ctx.sessions() as session:
        session.add(Team(name="North", created_at=now))
        announcement = Announcement(body="Saturday?", kind="poll", created_at=now)
        session.add(announcement)
        await session.flush()
        question = Poll(question="Saturday?", options=["Yes", "No"], created_at=now)
        question.announcement_id = announcement.id
        session.add(question)
        poll = (
            await session.exec(select(Message).where(Message.provider_message_id == "SMpoll"))
        ).one()
        poll.kind, poll.announcement_id = "poll", announcement.id
        session.add(poll)
        # A CRM told of everything: every path writes the same deliveries.
        session.add(
            WebhookSubscription(
                url="https://crm.example.org/hook",
                events=join_events(EVENT_TYPES),
                secret="whsec_test",
                created_at=now,
            )
        )
        await session.commit()
    await refresh(ctx)


async def run_path(url: str, clock: FakeClock, path: str, batches: list[Batch]) -> list[Any]:
    """Feed `batches` through one path; each request's outcome."""
    settings = make_settings(url, sqlite_lane=(path == "lane"), twilio_handles_opt_out=False)
    ctx = build_context(settings, clock=clock)
    ctx.registry.add(FakeAdapter(channels=("sms", "whatsapp", "telegram", "email")))
    outcomes: list[Any] = []
    try:
        await world(ctx)
        for batch in batches:
            if path == "one by one":
                results = []
                for events in batch:
                    try:
                        results.append(await ingest(ctx, events))
                    except Exception as exc:  # noqa: BLE001 (compared, not hidden)
                        results.append(exc)
            else:
                results = await asyncio.gather(
                    *(submit(ctx, events) for events in batch), return_exceptions=True
                )
            outcomes += [summary(r) for r in results]
            clock.advance(minutes=7)
        batcher = batcher_for(ctx)
        # The lane was taken when it was on (and never when off), or it was not compared.
        assert (batcher.lane_batches > 0) == (path == "lane")
    finally:
        await shutdown(ctx)
    return outcomes


def summary(result: object) -> object:
    if isinstance(result, IngestReport):
        return (len(result.stored), result.duplicates, result.statuses)
    return type(result).__name__


# Columns holding another row's id, and the table that row is in.
REFERENCES = {
    "supporter_id": "supporters",
    "message_id": "messages",
    "conversation_id": "conversations",
    "announcement_id": "announcements",
    "poll_id": "polls",
    "team_id": "teams",
    "subscription_id": "webhook_subscriptions",
}


def rows_without_ids(path: Path) -> dict[str, Counter[tuple[Any, ...]]]:
    """Every table as a multiset of rows: ids dropped, references replaced by the row
    they point at (recursively), so two databases that differ only in ids compare equal."""
    db = sqlite3.connect(path)
    db.row_factory = sqlite3.Row
    tables = {
        t.name: {r["id"]: dict(r) for r in db.execute(f'SELECT * FROM "{t.name}"')}  # noqa: S608
        for t in SQLModel.metadata.sorted_tables
        if "id" in t.c
    }
    plain = {
        t.name: [dict(r) for r in db.execute(f'SELECT * FROM "{t.name}"')]  # noqa: S608
        for t in SQLModel.metadata.sorted_tables
        if "id" not in t.c and t.name != "alembic_version"
    }
    db.close()

    def canonical(table: str, row: dict[str, Any]) -> tuple[Any, ...]:
        out = []
        for column, value in sorted(row.items()):
            if column == "id":
                continue
            target = REFERENCES.get(column)
            if target is not None and value is not None and target in tables:
                value = canonical(target, tables[target][value])
            elif column == "offered_teams" and value:
                value = "offered"  # team ids; the same teams everywhere
            out.append((column, value))
        return tuple(out)

    found = {
        name: Counter(canonical(name, r) for r in rows.values()) for name, rows in tables.items()
    }
    found |= {name: Counter(canonical(name, r) for r in rows) for name, rows in plain.items()}
    return found


@pytest.fixture
def three_databases(_migrated_template: Path | None, tmp_path: Path) -> dict[str, Path]:
    assert _migrated_template is not None
    paths = {}
    for path in ("lane", "no lane", "one by one"):
        paths[path] = tmp_path / f"{path.replace(' ', '-')}.db"
        shutil.copy(_migrated_template, paths[path])
    return paths


async def compare(seed: int, paths: dict[str, Path], start: FakeClock) -> None:
    batches = webhooks(seed)
    outcomes, dumps = {}, {}
    for path, file in paths.items():
        clock = FakeClock(start.now)
        outcomes[path] = await run_path(f"sqlite:///{file}", clock, path, batches)
        dumps[path] = rows_without_ids(file)
    reference = dumps["one by one"]
    for path in ("lane", "no lane"):
        assert outcomes[path] == outcomes["one by one"], (seed, path)
        for table, rows in reference.items():
            assert dumps[path][table] == rows, (seed, path, table)
    # The sequence did exercise the automations, or the comparison proves little.
    assert sum(reference["messages"].values()) > 6
    events = {dict(row)["event"] for row in reference["webhook_deliveries"]}
    assert "message.received" in events, seed


@pytest.mark.parametrize("seed", SEEDS)
async def test_every_path_stores_the_same_rows(
    seed: int, three_databases: dict[str, Path], clock: FakeClock
) -> None:
    await compare(seed, three_databases, clock)


def test_the_sequences_are_reproducible_and_varied() -> None:
    assert webhooks(3) == webhooks(3)
    events = [e for seed in SEEDS for batch in webhooks(seed) for req in batch for e in req]
    bodies = {e.body for e in events if isinstance(e, InboundMessage)}
    assert {"STOP", "JOIN", "1", "Grace Hopper"} <= bodies
    assert {e.status for e in events if isinstance(e, StatusUpdate)} == set(STATUSES)
    assert {e.channel for e in events} == {"sms", "whatsapp", "telegram", "email"}
