"""The data-scale benchmark's seeder (bench/seed_scale.py, bench/scale_pg.py): a small
database built the way the 1M-supporter one is, read back through the app's API with the
seeded admin key, on SQLite and (copied with COPY) on PostgreSQL; and the count check
that stops a build missing rows or leaving a table empty."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from bench import scale_pg, seed_scale
from gateway.app import create_app, shutdown
from storage.crypto_setup import setup_encryption
from tests.conftest import PG_URL, make_settings

TINY = seed_scale.Scale(
    supporters=400,
    teams=2,
    messages=4_000,
    long_threads=1,
    long_length=60,
    announcements=4,
    announcement_share=0.0,
    wide_share=0.5,
    team_sized=100,
    polls=6,
    events=5,
    audit_events=40,
    webhook_deliveries=120,
)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("scale") / "tiny.db"
    seed_scale.build(db, TINY)
    return db


async def _read_back(url: str) -> None:
    settings = make_settings(url, run_checkins=False)
    app = create_app(settings)
    await setup_encryption(app.state.ctx.engine, settings.encryption_keys)
    key = {"authorization": f"Bearer {seed_scale.api_key('admin', TINY)}"}
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            supporters = await client.get("/api/v1/supporters?limit=500", headers=key)
            assert supporters.status_code == 200, supporters.text
            assert len(supporters.json()["items"]) == TINY.supporters
            report = await client.get("/api/v1/announcements/1", headers=key)
            assert report.status_code == 200, report.text
            assert report.json()["recipients"] == TINY.supporters // 2
            thread = await client.get(
                f"/api/v1/conversations/{TINY.supporters // 2}/messages?limit=500", headers=key
            )
            assert thread.status_code == 200, thread.text
            assert len(thread.json()["items"]) >= TINY.long_length
            poll = await client.get("/api/v1/polls/1", headers=key)
            assert poll.status_code == 200, poll.text
            rsvps = await client.get("/api/v1/events/1/rsvps?limit=500", headers=key)
            assert rsvps.status_code == 200, rsvps.text
            assert len(rsvps.json()["items"]) == TINY.supporters // 2 // 10
            deliveries = await client.get("/api/v1/webhooks/1/deliveries?limit=500", headers=key)
            assert deliveries.status_code == 200, deliveries.text
            assert deliveries.json()["items"]
    finally:
        await transport.aclose()
        await shutdown(app.state.ctx)


@pytest.fixture
def copied(seeded: Path, tmp_path: Path) -> Path:
    """A copy of the seeded file for one test (the app writes to it)."""
    db = tmp_path / "copy.db"
    db.write_bytes(seeded.read_bytes())
    return db


async def test_a_seeded_database_is_read_by_the_app(copied: Path) -> None:
    await _read_back(f"sqlite:///{copied}")


def test_the_same_parameters_give_the_same_rows(seeded: Path, tmp_path: Path) -> None:
    again = tmp_path / "again.db"
    seed_scale.build(again, TINY)

    def digest(path: Path) -> list[tuple[object, ...]]:
        with sqlite3.connect(path) as conn:
            return conn.execute(
                "SELECT id, conversation_id, body, status, created_at FROM messages"
                " ORDER BY id LIMIT 500"
            ).fetchall()

    assert digest(again) == digest(seeded)


def test_the_count_check_catches_missing_rows_and_empty_tables(
    seeded: Path, tmp_path: Path
) -> None:
    db = tmp_path / "broken.db"
    db.write_bytes(seeded.read_bytes())
    with sqlite3.connect(db) as conn:
        written = {
            t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]  # noqa: S608
            for t in ("messages", "polls", "audit_events")
        }
        seed_scale.check_counts(conn, written, TINY)  # as built: no complaint
        conn.execute("DELETE FROM messages WHERE id = 7")
        with pytest.raises(RuntimeError, match="messages: 3999 rows, 4000 written"):
            seed_scale.check_counts(conn, written, TINY)
        conn.execute("DELETE FROM audit_events")
        with pytest.raises(RuntimeError, match=r"empty tables .*\['audit_events'\]"):
            seed_scale.check_counts(conn, {}, TINY)


def test_a_backfill_runs_on_the_loaded_rows_and_keys_the_cache(tmp_path: Path) -> None:
    fill = seed_scale.Backfill(
        "members per team",
        (
            "UPDATE teams SET description = (SELECT count(*) FROM team_memberships"
            " WHERE team_id = teams.id)",
        ),
    )
    assert seed_scale.fingerprint(TINY, [fill]) != seed_scale.fingerprint(TINY)
    db = tmp_path / "filled.db"
    seed_scale.build(db, TINY, [fill])
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT description, (SELECT count(*) FROM team_memberships WHERE team_id = t.id)"
            " FROM teams AS t"
        ).fetchall()
    assert len(rows) == TINY.teams
    assert all(int(description) == members > 0 for description, members in rows)


@pytest.mark.skipif(PG_URL is None, reason="RALLYPOINT_TEST_DATABASE_URL not set")
async def test_copied_to_postgresql_it_is_read_by_the_app(seeded: Path, database_url: str) -> None:
    name = make_url(database_url).database
    assert name is not None
    await scale_pg._copy(name, seeded, ())
    await _read_back(database_url)
