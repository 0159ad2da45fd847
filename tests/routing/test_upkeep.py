"""The upkeep round: on SQLite it gives a never-analyzed database its planner statistics;
on PostgreSQL it folds the counters' appended changes, and the report stays the same."""

from __future__ import annotations

from sqlalchemy import text

from routing.upkeep import Upkeep
from tests.conftest import FakeClock
from tests.e2e.harness import MakeClient, Org


async def test_a_round_analyzes_sqlite_or_folds_the_counters(
    make_client: MakeClient, clock: FakeClock
) -> None:
    org = await Org.start(make_client, clock)
    await org.team("Canvassing")
    for n in range(3):
        await org.supporter(
            name=f"Member {n}",
            addresses=[{"channel": "sms", "address": f"+1415555030{n}"}],
            teams=["Canvassing"],
        )
    created = await org.announce("Rally", {"teams": ["Canvassing"]})
    await org.dispatch()
    before = await org.api("GET", f"/announcements/{created['id']}")
    assert before["counts"] == {"sent": 3}

    postgresql = org.ctx.engine.dialect.name == "postgresql"
    async with org.ctx.engine.connect() as conn:
        if postgresql:
            pending = "SELECT count(*) FROM announcement_count_changes"
            assert (await conn.execute(text(pending))).scalar_one() > 0
        else:
            stats = "SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'"
            assert (await conn.execute(text(stats))).scalar_one() == 0

    upkeep = Upkeep(org.ctx)
    folded = await upkeep.run_once()

    async with org.ctx.engine.connect() as conn:
        if postgresql:
            assert folded > 0
            assert (await conn.execute(text(pending))).scalar_one() == 0
            rows = "SELECT status, n FROM announcement_counts WHERE announcement_id = :a"
            found = (await conn.execute(text(rows), {"a": created["id"]})).all()
            assert [(s, n) for s, n in found if n] == [("sent", 3)]
        else:
            assert folded == 0
            assert (await conn.execute(text(stats))).scalar_one() == 1
            analyzed = "SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'messages'"
            assert (await conn.execute(text(analyzed))).scalar_one() > 0
    assert await org.api("GET", f"/announcements/{created['id']}") == before
