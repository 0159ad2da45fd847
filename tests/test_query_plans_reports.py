"""The reports and lists a campaign's organizers read at a million supporters use indexes:
every statement behind `GET /announcements/{id}`, `GET /checkins/due` (a team's and
everyone's, first and later pages) and `GET /teams/{team}/stats` is captured as the app
runs it and explained. SQLite: no full SCAN of a large table and no sort of one for ORDER
BY. PostgreSQL (RALLYPOINT_TEST_DATABASE_URL): with sequential scans disabled in the
explaining transaction (a tiny table would rightly prefer one), the plan reads the large
tables through an index."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import event

from routing.context import AppContext
from tests.conftest import FakeClock, bearer, new_key
from tests.e2e.harness import MakeClient

LARGE = ("messages", "supporters", "team_memberships", "supporter_addresses", "event_rsvps")


async def explained(
    ctx: AppContext, run: Callable[[], Awaitable[Any]], large: tuple[str, ...] = LARGE
) -> list[tuple[str, str]]:
    """(statement, plan) of every statement `run` makes that reads a large table."""
    seen: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and any(
            f" {table}" in statement for table in large
        ):
            seen.append((statement, params))

    event.listen(ctx.engine.sync_engine, "before_cursor_execute", capture)
    try:
        await run()
    finally:
        event.remove(ctx.engine.sync_engine, "before_cursor_execute", capture)
    assert seen
    plans: list[tuple[str, str]] = []
    async with ctx.engine.begin() as conn:
        postgresql = conn.dialect.name == "postgresql"
        if postgresql:
            await conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        for statement, params in seen:
            prefix = "EXPLAIN" if postgresql else "EXPLAIN QUERY PLAN"
            rows = (await conn.exec_driver_sql(f"{prefix} {statement}", params)).all()
            plans.append(
                (statement, " | ".join(str(row[-1] if not postgresql else row[0]) for row in rows))
            )
    return plans


def assert_indexed(
    plans: list[tuple[str, str]], postgresql: bool, large: tuple[str, ...] = LARGE
) -> None:
    for statement, plan in plans:
        for table in large:
            if postgresql:
                assert f"Seq Scan on {table}" not in plan, (statement, plan)
            else:
                assert f"SCAN {table}" not in plan.replace("SCAN CONSTANT", ""), (statement, plan)
        if not postgresql:
            assert "TEMP B-TREE FOR ORDER BY" not in plan, (statement, plan)


@pytest.fixture
async def org(make_client: MakeClient) -> Any:
    client = await make_client()
    client.headers.update(bearer(await new_key(client.ctx)))  # type: ignore[attr-defined]
    for name in ("Canvassing", "Phone bank"):
        assert (await client.post("/api/v1/teams", json={"name": name})).status_code == 201
    for n in range(3):
        answer = await client.post(
            "/api/v1/supporters",
            json={
                "name": f"Member {n}",
                "addresses": [{"channel": "sms", "address": f"+1415555020{n}"}],
                "teams": ["Canvassing"],
            },
        )
        assert answer.status_code == 201
    return client


async def get(client: Any, path: str, **params: Any) -> Any:
    answer = await client.get(f"/api/v1{path}", params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_the_announcement_report_reads_counters_and_indexes(org: Any) -> None:
    created = await org.post(
        "/api/v1/announcements", json={"body": "Rally", "audience": {"teams": ["Canvassing"]}}
    )
    assert created.status_code == 202
    ctx: AppContext = org.ctx
    plans = await explained(ctx, lambda: get(org, f"/announcements/{created.json()['id']}"))
    assert any("ix_messages_announcement_status" in plan for _, plan in plans), plans
    assert not any("count(" in statement.lower() for statement, _ in plans), plans
    assert_indexed(plans, ctx.engine.dialect.name == "postgresql")


@pytest.mark.parametrize("team", ["Canvassing", None])
async def test_the_due_list_pages_through_the_quiet_index(
    org: Any, clock: FakeClock, team: str | None
) -> None:
    ctx: AppContext = org.ctx
    params: dict[str, Any] = {"days": 7, "limit": 1, **({"team": team} if team else {})}

    async def two_pages() -> None:
        first = await get(org, "/checkins/due", **params)
        assert first["next_cursor"]
        await get(org, "/checkins/due", **params, cursor=first["next_cursor"])

    clock.advance(days=30)  # everyone has been quiet for a month
    plans = await explained(ctx, two_pages)
    postgresql = ctx.engine.dialect.name == "postgresql"
    if not postgresql:
        assert all("ix_supporters_quiet" in plan for _, plan in plans), plans
    assert_indexed(plans, postgresql)


async def test_team_stats_read_one_on_ones_through_their_index(org: Any) -> None:
    ctx: AppContext = org.ctx
    plans = await explained(ctx, lambda: get(org, "/teams/Canvassing/stats"))
    assert any("ix_messages_one_on_one" in plan for _, plan in plans), plans
    assert_indexed(plans, ctx.engine.dialect.name == "postgresql")
