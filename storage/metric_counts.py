"""The totals `GET /metrics` serves, kept by triggers as rows change (issue 18).

`rallypoint_inbound_messages_total{channel}`, `rallypoint_send_attempts{channel,status}`
and `rallypoint_webhook_deliveries{status}` were grouped counts over `messages`,
`message_attempts` and `webhook_deliveries` (seconds per scrape at millions of rows).
Triggers on those tables now keep `metric_counts` (metric, channel, status → n) in the
writing transaction, whichever code path writes, so a scrape reads a few rows and the
figures stay the whole deployment's and survive restarts. As storage/announcement_counts.py:

- SQLite (one writer at a time): row triggers add to the counter rows directly (UPSERT).
- PostgreSQL (many dispatchers at once): statement triggers append each statement's net
  change to `metric_count_changes`, so concurrent writers never wait on one counter row;
  `fold_metric_changes` (routing/upkeep.py, every few seconds in serve and worker) moves
  them into `metric_counts` and `read_metric_counts` adds what is not folded yet.

`REBUILD` recounts everything in set-based SQL (the migration's backfill, and a seeder that
bulk-loaded with the triggers dropped).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import DDL, MetaData, event, text
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.announcement_counts import fold_changes

_KEY = "metric, channel, status, n"
_ALL = "1 = 1"  # a source that counts every row


@dataclass(frozen=True)
class Source:
    metric: str
    table: str
    channel: str  # column, or '' when the metric has no channel label
    status: str  # column, or ''
    where: str  # which rows count, as a condition on `{row}`
    watched: tuple[str, ...]  # the columns whose change moves a row between counters

    def key(self, row: str) -> str:
        def one(column: str) -> str:
            return f"coalesce({row}.{column}, '')" if column else "''"

        return f"'{self.metric}', {one(self.channel)}, {one(self.status)}"

    def cond(self, row: str) -> str:
        return self.where.format(row=row)


SOURCES = (
    Source(
        "inbound",
        "messages",
        "channel",
        "",
        "{row}.direction = 'inbound'",
        ("channel", "direction"),
    ),
    Source("attempts", "message_attempts", "channel", "status", _ALL, ("channel", "status")),
    Source("deliveries", "webhook_deliveries", "", "status", _ALL, ("status",)),
)


def _upsert(source: Source, row: str, sign: str) -> str:
    return (
        f"INSERT INTO metric_counts ({_KEY}) SELECT {source.key(row)}, {sign}1"  # noqa: S608
        f" WHERE {source.cond(row)}"
        " ON CONFLICT (metric, channel, status) DO UPDATE SET n = n + excluded.n;"
    )


def _when(source: Source, row: str) -> str:
    """A filtered source's row triggers fire only for the rows that count: without the
    WHEN, every outbound `messages` insert (a fan-out of a million) ran an empty upsert."""
    return "" if source.where == _ALL else f" WHEN {source.cond(row)}"


def _sqlite(source: Source) -> tuple[str, ...]:
    name = f"trg_{source.table}_metric"
    changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in source.watched)
    return (
        f"CREATE TRIGGER IF NOT EXISTS {name}_insert AFTER INSERT ON {source.table}"
        f"{_when(source, 'NEW')} BEGIN {_upsert(source, 'NEW', '')} END",
        f"CREATE TRIGGER IF NOT EXISTS {name}_delete AFTER DELETE ON {source.table}"
        f"{_when(source, 'OLD')} BEGIN {_upsert(source, 'OLD', '-')} END",
        f"CREATE TRIGGER IF NOT EXISTS {name}_update AFTER UPDATE OF"
        f" {', '.join(source.watched)} ON {source.table} WHEN {changed}"
        f" BEGIN {_upsert(source, 'OLD', '-')} {_upsert(source, 'NEW', '')} END",
    )


def _rows(source: Source, table: str, sign: str) -> str:
    return (
        f"SELECT {source.key(table)}, {sign}1 AS n FROM {table}"  # noqa: S608 - our own names
        f" WHERE {source.cond(table)}"
    )


def _postgresql(source: Source) -> tuple[str, ...]:
    function = f"rp_metric_{source.table}"
    append = (
        f"INSERT INTO metric_count_changes ({_KEY}) SELECT m, c, s, sum(n) FROM ({{rows}})"  # noqa: S608
        " AS d(m, c, s, n) GROUP BY m, c, s HAVING sum(n) <> 0;"
    )
    new, old = _rows(source, "new_rows", ""), _rows(source, "old_rows", "-")
    both = f"{new} UNION ALL {old}"
    name = f"trg_{source.table}_metric"
    return (
        f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        f" IF TG_OP = 'INSERT' THEN {append.format(rows=new)}"
        f" ELSIF TG_OP = 'DELETE' THEN {append.format(rows=old)}"
        f" ELSE {append.format(rows=both)} END IF; RETURN NULL; END $$",
        f"CREATE OR REPLACE TRIGGER {name}_insert AFTER INSERT ON {source.table}"
        f" REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
        f"CREATE OR REPLACE TRIGGER {name}_update AFTER UPDATE ON {source.table}"
        " REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"
        f" FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
        f"CREATE OR REPLACE TRIGGER {name}_delete AFTER DELETE ON {source.table}"
        f" REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
    )


TRIGGERS = {
    "sqlite": tuple(s for source in SOURCES for s in _sqlite(source)),
    "postgresql": tuple(s for source in SOURCES for s in _postgresql(source)),
}
DROP_TRIGGERS = {
    "sqlite": tuple(
        f"DROP TRIGGER IF EXISTS trg_{source.table}_metric_{op}"
        for source in SOURCES
        for op in ("insert", "update", "delete")
    ),
    "postgresql": tuple(
        statement
        for source in SOURCES
        for statement in (
            *(
                f"DROP TRIGGER IF EXISTS trg_{source.table}_metric_{op} ON {source.table}"
                for op in ("insert", "update", "delete")
            ),
            f"DROP FUNCTION IF EXISTS rp_metric_{source.table}()",
        )
    ),
}
REBUILD = (
    "DELETE FROM metric_count_changes",
    "DELETE FROM metric_counts",
    *(
        f"INSERT INTO metric_counts ({_KEY}) SELECT {source.key(source.table)}, count(*)"  # noqa: S608
        f" FROM {source.table} WHERE {source.cond(source.table)} GROUP BY 1, 2, 3"
        for source in SOURCES
    ),
)


def install_metric_triggers(metadata: MetaData) -> None:
    """Create the triggers wherever the models' schema is created (tests, seeders); the
    migration creates them with the same statements."""
    for dialect, statements in TRIGGERS.items():
        for statement in statements:
            ddl = DDL(statement).execute_if(dialect=dialect)  # type: ignore[no-untyped-call]
            event.listen(metadata, "after_create", ddl)


FOLD = text(
    f"WITH gone AS (DELETE FROM metric_count_changes RETURNING {_KEY})"  # noqa: S608
    f" INSERT INTO metric_counts ({_KEY}) SELECT metric, channel, status, sum(n) FROM gone"
    " GROUP BY metric, channel, status"
    # One order for every folder, so two folding at once never deadlock.
    " ORDER BY metric, channel, status"
    " ON CONFLICT (metric, channel, status) DO UPDATE SET n = metric_counts.n + excluded.n"
)


async def fold_metric_changes(session: AsyncSession) -> int:
    """Move the appended changes into `metric_counts` (PostgreSQL; nothing on SQLite).
    Returns the number of counter rows written; the caller commits."""
    return await fold_changes(session, FOLD)


READ = text(
    "SELECT metric, channel, status, sum(n) FROM ("  # noqa: S608 - our own names
    f" SELECT {_KEY} FROM metric_counts UNION ALL SELECT {_KEY} FROM metric_count_changes"
    ") AS c GROUP BY metric, channel, status"
)


async def read_metric_counts(session: AsyncSession) -> dict[str, dict[tuple[str, str], int]]:
    """metric → (channel, status) → n, rows counting none left out ('' = no label)."""
    counts: dict[str, dict[tuple[str, str], int]] = {}
    for metric, channel, status, n in (await session.execute(READ)).all():
        if n:
            counts.setdefault(str(metric), {})[(str(channel), str(status))] = int(n)
    return counts
