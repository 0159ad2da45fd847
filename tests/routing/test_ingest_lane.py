"""The SQLite lane of webhook ingestion (routing/inbound/lane.py, storage/sqlite_lane.py):
it writes exactly what the regular path writes, leaves whole requests to the regular path
when an automation or an error needs them, and keeps each person's messages in order."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from sqlmodel import SQLModel

from channels.base import InboundMessage, StatusUpdate, WebhookEvent
from gateway.app import build_context, shutdown
from routing.context import AppContext
from routing.inbound.batch import IngestBatcher
from routing.inbound.store import IngestReport
from storage.sqlite_lane import SqliteLane, lane_path
from tests.conftest import PG_URL, FakeClock, make_settings
from tests.routing.fake_adapter import add_supporter, sent_message

pytestmark = pytest.mark.skipif(bool(PG_URL), reason="the lane is SQLite's own")

Batch = list[Sequence[WebhookEvent]]


def sms(sid: str, frm: str, body: str = "hello", channel: str = "sms") -> InboundMessage:
    return InboundMessage(channel=channel, address=frm, provider_message_id=sid, body=body)  # type: ignore[arg-type]


def status(sid: str, value: str = "delivered", **extra: str) -> StatusUpdate:
    return StatusUpdate(channel="sms", provider_message_id=sid, status=value, **extra)  # type: ignore[arg-type]


def dump(url: str) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table, as stored."""
    path = lane_path(url)
    assert path is not None
    with sqlite3.connect(path) as db:
        return {
            t.name: db.execute(f'SELECT * FROM "{t.name}" ORDER BY 1').fetchall()  # noqa: S608
            for t in SQLModel.metadata.sorted_tables
            if t.name != "alembic_version"
        }


async def world(url: str, clock: FakeClock) -> AppContext:
    """Two known supporters and one sent message awaiting its callbacks."""
    ctx = build_context(make_settings(url), clock=clock)
    ada = await add_supporter(ctx, {"sms": "+14155550001"}, name="Ada")
    await add_supporter(ctx, {"whatsapp": "+14155550002"}, name="Bo")
    await sent_message(ctx, ada, "sms", "+14155550001", "SMout1")
    return ctx


async def ingest(ctx: AppContext, batch: Batch, *, use_lane: bool) -> tuple[list[object], int]:
    batcher = IngestBatcher(ctx, use_lane=use_lane)
    try:
        results = await batcher._write(batch)
        return results, batcher.lane_batches
    finally:
        await batcher.aclose()


@pytest.fixture
def two_databases(_migrated_template: Path | None, tmp_path: Path) -> tuple[str, str]:
    assert _migrated_template is not None
    urls = []
    for name in ("lane", "regular"):
        shutil.copy(_migrated_template, tmp_path / f"{name}.db")
        urls.append(f"sqlite:///{tmp_path / name}.db")
    return urls[0], urls[1]


PLAIN: Batch = [
    [sms("SM1", "+14155550001")],  # a known supporter
    [sms("SM2", "+14155550002")],  # a phone known on whatsapp, writing by sms
    [sms("SM3", "+14155550003"), sms("SM4", "+14155550003", channel="whatsapp")],  # new person
    [sms("SM3", "+14155550003")],  # a provider retry in the same batch
    [sms("SM5", "+14155550004", "Ünïcode ✓")],
    [status("SMout1", "sent"), status("SMout1", "delivered")],
    [status("SMout1", "queued")],  # backwards: ignored
]


async def test_the_lane_writes_exactly_what_the_regular_path_writes(
    two_databases: tuple[str, str], clock: FakeClock
) -> None:
    dumps, reports = [], []
    for url, use_lane in zip(two_databases, (True, False), strict=True):
        ctx = await world(url, clock)
        results, lane_batches = await ingest(ctx, PLAIN, use_lane=use_lane)
        await shutdown(ctx)
        assert lane_batches == (1 if use_lane else 0)
        reports.append(results)
        dumps.append(dump(url))

    assert reports[0] == reports[1]
    assert all(isinstance(r, IngestReport) for r in reports[0])
    assert [len(r.stored) for r in reports[0]] == [1, 1, 2, 0, 1, 0, 0]  # type: ignore[union-attr]
    for table in dumps[1]:
        assert dumps[0][table] == dumps[1][table], table
    assert len(dumps[0]["messages"]) == 1 + 5
    # The message was "sent" already: only "delivered" moves it on.
    assert [r[3] for r in dumps[0]["message_status_events"]] == ["delivered"]


async def test_requests_an_automation_needs_go_the_regular_way_in_order(
    database_url: str, clock: FakeClock
) -> None:
    ctx = await world(database_url, clock)
    batch: Batch = [
        [sms("SMa", "+14155550007", "hello")],  # plain, but the same person says STOP next
        [sms("SMb", "+14155550008", "hi")],  # plain: the lane
        [sms("SMc", "+14155550007", "STOP")],
        [sms("SMd", "+14155550007", "still there?")],
        [status("SMout1", "failed", error_code="30006")],  # an error to act on
        [status("SMnobody", "delivered")],  # no such attempt yet: kept for later
    ]
    results, lane_batches = await ingest(ctx, batch, use_lane=True)
    await shutdown(ctx)

    assert lane_batches == 1
    assert all(isinstance(r, IngestReport) for r in results)
    rows = dump(database_url)
    inbound = [r for r in rows["messages"] if r[3] == "inbound"]
    # The lane's commit (SMb) comes first; the person who said STOP keeps their order.
    bodies = [r[7] for r in inbound]
    assert bodies[0] == "hi"
    assert [b for b in bodies if b != "hi"][:3] == ["hello", "STOP", "still there?"]
    stopped = [r for r in rows["supporters"] if r[1] == "+14155550007"]
    assert len(stopped) == 1 and stopped[0][5] == 1  # opted out
    assert len(rows["pending_statuses"]) == 1
    assert any(r[5] == "failed" for r in rows["message_attempts"])


async def test_unverified_senders_set_nothing_off_either_way(
    two_databases: tuple[str, str], clock: FakeClock
) -> None:
    """A message whose sender the channel could not verify (a forgeable email From) is
    stored with its flag and starts no automation, on the lane and on the regular path."""
    batch: Batch = [
        [replace(sms("SMu1", "+14155550001", "STOP"), sender_verified=False)],
        [replace(sms("SMu2", "+14155550006", "JOIN"), sender_verified=False)],
        [replace(sms("SMu3", "+14155550005", "hello"), sender_verified=True)],
    ]
    dumps = []
    for url, use_lane in zip(two_databases, (True, False), strict=True):
        ctx = await world(url, clock)
        results, _ = await ingest(ctx, batch, use_lane=use_lane)
        await shutdown(ctx)
        assert all(isinstance(r, IngestReport) and len(r.stored) == 1 for r in results)
        dumps.append(dump(url))

    for table in dumps[1]:
        assert dumps[0][table] == dumps[1][table], table
    rows = dumps[0]
    at = list(SQLModel.metadata.tables["messages"].c.keys()).index("sender_verified")
    verified = {r[7]: r[at] for r in rows["messages"] if r[3] == "inbound"}
    assert verified == {"STOP": 0, "JOIN": 0, "hello": 1}
    assert not [r for r in rows["supporters"] if r[5]]  # nobody opted out
    assert rows["consent_events"] == rows["onboarding_states"] == []
    assert not [r for r in rows["messages"] if r[3] == "outbound" and r[7] != "See you Saturday"]


async def test_unverified_mail_is_no_activity_on_the_fast_paths(
    database_url: str, clock: FakeClock
) -> None:
    """A plain message the lane would take goes the one-by-one way when its sender is not
    verified, where it leaves the supporter's last inbound time alone."""
    ctx = await world(database_url, clock)
    batch: Batch = [
        [replace(sms("SMv1", "+14155550001", "just saying hi"), sender_verified=False)],
        [replace(sms("SMv2", "+14155550002", "me too"), sender_verified=True)],
    ]
    results, _ = await ingest(ctx, batch, use_lane=True)
    await shutdown(ctx)
    assert all(isinstance(r, IngestReport) and len(r.stored) == 1 for r in results)
    path = database_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        last = dict(
            conn.execute(
                "SELECT a.address, s.last_inbound_at FROM supporters s JOIN supporter_addresses"
                " a ON a.supporter_id = s.id WHERE a.address IN ('+14155550001', '+14155550002')"
            ).fetchall()
        )
    assert last["+14155550001"] is None
    assert last["+14155550002"] is not None


async def test_a_failing_lane_batch_is_stored_the_regular_way(
    database_url: str, clock: FakeClock
) -> None:
    ctx = await world(database_url, clock)
    bad = InboundMessage(
        channel="sms", address="+14155550009", provider_message_id="SMx", body=None
    )  # type: ignore[arg-type]
    results, lane_batches = await ingest(ctx, [[sms("SMok", "+14155550010")], [bad]], use_lane=True)
    await shutdown(ctx)

    assert lane_batches == 0  # rolled back whole
    assert isinstance(results[0], IngestReport) and len(results[0].stored) == 1
    assert isinstance(results[1], Exception)
    assert [r[7] for r in dump(database_url)["messages"] if r[3] == "inbound"] == ["hello"]


def test_only_a_sqlite_file_gets_a_lane() -> None:
    assert lane_path("sqlite:///data/rallypoint.db") == "data/rallypoint.db"
    assert lane_path("sqlite+aiosqlite:////var/lib/rp.db") == "/var/lib/rp.db"
    assert lane_path("sqlite://") is None
    assert lane_path("sqlite:///:memory:") is None
    assert lane_path("sqlite:///file:x?mode=memory&uri=true") is None
    assert lane_path("postgresql+asyncpg://postgres@127.0.0.1/test") is None


async def test_the_lane_checkpoints_the_wal_beside_its_writes(tmp_path: Path) -> None:
    path = str(tmp_path / "lane.db")
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    lane = SqliteLane(path, checkpoint_every=3)
    try:
        for n in range(7):
            await lane.run(lambda cursor, n=n: cursor.execute("INSERT INTO t (v) VALUES (?)", (n,)))
            await lane.checkpointed()
        # Commits 3 and 6 set one off each; every page in the WAL was copied back.
        assert len(lane.checkpoints) == 2
        busy, pages, copied = lane.checkpoints[-1]
        assert busy == 0 and pages == copied > 0
        count = await lane.run(lambda cursor: cursor.execute("SELECT count(*) FROM t").fetchone())
        assert count == (7,)
    finally:
        await lane.aclose()


async def test_a_failed_transaction_on_the_lane_leaves_nothing(tmp_path: Path) -> None:
    path = str(tmp_path / "lane.db")
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
    lane = SqliteLane(path)

    def half_then_fail(cursor: sqlite3.Cursor) -> None:
        cursor.execute("INSERT INTO t (v) VALUES ('kept?')")
        cursor.execute("INSERT INTO t (v) VALUES (NULL)")

    try:
        with pytest.raises(sqlite3.IntegrityError):
            await lane.run(half_then_fail)
        assert await lane.run(lambda c: c.execute("SELECT count(*) FROM t").fetchone()) == (0,)
    finally:
        await lane.aclose()


async def test_a_broken_lane_costs_speed_not_messages(
    database_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: object) -> list[IngestReport | None]:
        raise RuntimeError("a bug in the lane")

    monkeypatch.setattr("routing.inbound.batch.store_batch_on_lane", broken)
    ctx = await world(database_url, clock)
    results, lane_batches = await ingest(ctx, PLAIN, use_lane=True)
    await shutdown(ctx)

    assert lane_batches == 0
    assert [len(r.stored) for r in results] == [1, 1, 2, 0, 1, 0, 0]  # type: ignore[union-attr]
    assert len([r for r in dump(database_url)["messages"] if r[3] == "inbound"]) == 5
