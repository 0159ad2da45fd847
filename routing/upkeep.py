"""Database upkeep beside the server and every worker: fold the announcement and
`/metrics` counters' appended changes (PostgreSQL, every round) and keep SQLite's
query-planner statistics current (`PRAGMA optimize`, at the first round and then hourly).
PostgreSQL's own autovacuum keeps its statistics (ANALYZE) current."""

from __future__ import annotations

from routing.context import AppContext
from routing.periodic import Periodic
from storage.announcement_counts import fold_count_changes
from storage.metric_counts import fold_metric_changes

INTERVAL = 5.0
OPTIMIZE_EVERY = 720  # rounds: an hour at INTERVAL
# Bounds the rows ANALYZE reads per index, so a round stays short on a large database.
ANALYSIS_LIMIT = "PRAGMA analysis_limit=1000"


async def optimize_sqlite_statistics(ctx: AppContext) -> bool:
    """SQLite: a database never analyzed gets ANALYZE; later, `PRAGMA optimize` analyzes
    the tables whose statistics went stale (grown 10x, or used by queries that would
    have been planned better). False on PostgreSQL."""
    if ctx.engine.dialect.name != "sqlite":
        return False
    async with ctx.engine.connect() as conn:
        await conn.exec_driver_sql(ANALYSIS_LIMIT)
        analyzed = (
            await conn.exec_driver_sql(
                "SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'"
            )
        ).scalar_one()
        await conn.exec_driver_sql("PRAGMA optimize" if analyzed else "ANALYZE")
        await conn.commit()
    return True


class Upkeep(Periodic):
    name = "upkeep"

    def __init__(self, ctx: AppContext, interval: float = INTERVAL) -> None:
        super().__init__(interval)
        self.ctx = ctx
        self.rounds = 0

    async def round(self) -> int:
        """The number of counter rows folded."""
        if self.rounds % OPTIMIZE_EVERY == 0:
            await optimize_sqlite_statistics(self.ctx)
        self.rounds += 1
        async with self.ctx.sessions() as session:
            folded = await fold_count_changes(session)
            folded += await fold_metric_changes(session)
            await session.commit()
        return folded
