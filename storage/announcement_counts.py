"""An announcement's messages counted by status and channel, kept as they change.

Triggers on `messages` keep `announcement_counts` in the transaction that inserts, updates
or deletes an announcement's message, whichever code path does it (fan-out, dispatch
results, status callbacks, fallback, cancel, requeue, erasure), so the report reads a few
rows instead of counting a million.

- SQLite (one writer at a time): row triggers add to the counter rows directly (UPSERT).
- PostgreSQL (many dispatchers at once): statement triggers append the statement's net
  change to `announcement_count_changes` (grouped by key through the transition tables),
  so two transactions never wait on, or deadlock over, one counter row. `fold_count_changes`
  moves those rows into `announcement_counts` (serve and worker run it periodically) and
  `read_counts` adds what is not folded yet, so a read is exact at any moment.

Teams' `member_count` is kept by triggers on `team_memberships` the same way.

`rebuild_announcement_counts` recounts everything (teams' members too) in set-based SQL:
the migration's backfill, and for a seeder that bulk-loaded rows with the triggers absent.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import DDL, MetaData, TextClause, event, text
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel.ext.asyncio.session import AsyncSession

NO_CHANNEL_KEY = ""  # the counter rows' channel for a message without one (skipped, unreachable)

_KEY = "announcement_id, status, channel, n, segments, fallback"


def _add(row: str) -> str:
    return (
        f"INSERT INTO announcement_counts ({_KEY}) SELECT {row}.announcement_id, {row}.status,"
        f" coalesce({row}.channel, ''), 1, coalesce({row}.segments, 0),"
        f" {row}.fallback_from IS NOT NULL WHERE {row}.announcement_id IS NOT NULL"
        " ON CONFLICT (announcement_id, status, channel) DO UPDATE SET n = n + 1,"
        " segments = segments + excluded.segments, fallback = fallback + excluded.fallback;"
    )


def _take(row: str) -> str:
    return (
        "UPDATE announcement_counts SET n = n - 1,"  # noqa: S608 - our own names
        f" segments = segments - coalesce({row}.segments, 0),"
        f" fallback = fallback - ({row}.fallback_from IS NOT NULL)"
        f" WHERE announcement_id = {row}.announcement_id AND status = {row}.status"
        f" AND channel = coalesce({row}.channel, '');"
    )


_COUNTED = ("status", "channel", "segments", "fallback_from", "announcement_id")
_CHANGED = " OR ".join(
    f"OLD.{c} IS NOT NEW.{c}"
    if c != "fallback_from"
    else "(OLD.fallback_from IS NULL) IS NOT (NEW.fallback_from IS NULL)"
    for c in _COUNTED
)

SQLITE_TRIGGERS: tuple[str, ...] = (
    "CREATE TRIGGER IF NOT EXISTS trg_messages_count_insert AFTER INSERT ON messages"
    f" WHEN NEW.announcement_id IS NOT NULL BEGIN {_add('NEW')} END",
    "CREATE TRIGGER IF NOT EXISTS trg_messages_count_delete AFTER DELETE ON messages"
    f" WHEN OLD.announcement_id IS NOT NULL BEGIN {_take('OLD')} END",
    "CREATE TRIGGER IF NOT EXISTS trg_messages_count_update AFTER UPDATE OF"
    f" {', '.join(_COUNTED)} ON messages"
    f" WHEN (OLD.announcement_id IS NOT NULL OR NEW.announcement_id IS NOT NULL) AND ({_CHANGED})"
    f" BEGIN {_take('OLD')} {_add('NEW')} END",
)


def _rows(table: str, sign: str) -> str:
    return (
        f"SELECT announcement_id, status, coalesce(channel, '') AS channel, {sign}1 AS n,"  # noqa: S608
        f" {sign}coalesce(segments, 0) AS segments,"
        f" {sign}(fallback_from IS NOT NULL)::int AS fallback"
        f" FROM {table} WHERE announcement_id IS NOT NULL"
    )


def _append(rows: str) -> str:
    return (
        f"INSERT INTO announcement_count_changes ({_KEY})"  # noqa: S608 - our own names
        " SELECT announcement_id, status, channel, sum(n), sum(segments), sum(fallback)"
        f" FROM ({rows}) AS d GROUP BY announcement_id, status, channel"
        " HAVING sum(n) <> 0 OR sum(segments) <> 0 OR sum(fallback) <> 0;"
    )


POSTGRESQL_TRIGGERS: tuple[str, ...] = (
    "CREATE OR REPLACE FUNCTION rp_count_message_changes() RETURNS trigger"
    " LANGUAGE plpgsql AS $$ BEGIN"
    f" IF TG_OP = 'INSERT' THEN {_append(_rows('new_rows', ''))}"
    f" ELSIF TG_OP = 'DELETE' THEN {_append(_rows('old_rows', '-'))}"
    f" ELSE {_append(_rows('new_rows', '') + ' UNION ALL ' + _rows('old_rows', '-'))}"
    " END IF; RETURN NULL; END $$",
    "CREATE OR REPLACE TRIGGER trg_messages_count_insert AFTER INSERT ON messages"
    " REFERENCING NEW TABLE AS new_rows"
    " FOR EACH STATEMENT EXECUTE FUNCTION rp_count_message_changes()",
    "CREATE OR REPLACE TRIGGER trg_messages_count_update AFTER UPDATE ON messages"
    " REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"
    " FOR EACH STATEMENT EXECUTE FUNCTION rp_count_message_changes()",
    "CREATE OR REPLACE TRIGGER trg_messages_count_delete AFTER DELETE ON messages"
    " REFERENCING OLD TABLE AS old_rows"
    " FOR EACH STATEMENT EXECUTE FUNCTION rp_count_message_changes()",
)

# A team's `member_count`, kept the same way (row triggers: memberships change one by one
# or in one import's transaction, never from many writers at once).
_MEMBER = "UPDATE teams SET member_count = member_count {sign} 1 WHERE id = {row}.team_id;"
SQLITE_TRIGGERS += (
    "CREATE TRIGGER IF NOT EXISTS trg_team_memberships_count_insert AFTER INSERT ON"
    f" team_memberships BEGIN {_MEMBER.format(sign='+', row='NEW')} END",
    "CREATE TRIGGER IF NOT EXISTS trg_team_memberships_count_delete AFTER DELETE ON"
    f" team_memberships BEGIN {_MEMBER.format(sign='-', row='OLD')} END",
    "CREATE TRIGGER IF NOT EXISTS trg_team_memberships_count_update AFTER UPDATE OF team_id"
    " ON team_memberships WHEN OLD.team_id IS NOT NEW.team_id BEGIN"
    f" {_MEMBER.format(sign='-', row='OLD')} {_MEMBER.format(sign='+', row='NEW')} END",
)
POSTGRESQL_TRIGGERS += (
    "CREATE OR REPLACE FUNCTION rp_count_team_members() RETURNS trigger"
    " LANGUAGE plpgsql AS $$ BEGIN"
    f" IF TG_OP IN ('DELETE', 'UPDATE') THEN {_MEMBER.format(sign='-', row='OLD')} END IF;"
    f" IF TG_OP IN ('INSERT', 'UPDATE') THEN {_MEMBER.format(sign='+', row='NEW')} END IF;"
    " RETURN NULL; END $$",
    "CREATE OR REPLACE TRIGGER trg_team_memberships_count AFTER INSERT OR DELETE OR UPDATE"
    " OF team_id ON team_memberships FOR EACH ROW EXECUTE FUNCTION rp_count_team_members()",
)

DROP_TRIGGERS = {
    "sqlite": tuple(
        f"DROP TRIGGER IF EXISTS trg_{table}_count_{op}"
        for table in ("messages", "team_memberships")
        for op in ("insert", "update", "delete")
    ),
    "postgresql": (
        *(
            f"DROP TRIGGER IF EXISTS trg_messages_count_{op} ON messages"
            for op in ("insert", "update", "delete")
        ),
        "DROP FUNCTION IF EXISTS rp_count_message_changes()",
        "DROP TRIGGER IF EXISTS trg_team_memberships_count ON team_memberships",
        "DROP FUNCTION IF EXISTS rp_count_team_members()",
    ),
}


def trigger_statements(dialect: str) -> tuple[str, ...]:
    return SQLITE_TRIGGERS if dialect == "sqlite" else POSTGRESQL_TRIGGERS


def install_triggers(metadata: MetaData) -> None:
    """Create the triggers wherever the models' schema is created (tests, seeders); the
    migration creates them with the same statements."""
    for dialect, statements in (("sqlite", SQLITE_TRIGGERS), ("postgresql", POSTGRESQL_TRIGGERS)):
        for statement in statements:
            ddl = DDL(statement).execute_if(dialect=dialect)  # type: ignore[no-untyped-call]
            event.listen(metadata, "after_create", ddl)


REBUILD = (
    "DELETE FROM announcement_count_changes",
    "DELETE FROM announcement_counts",
    f"INSERT INTO announcement_counts ({_KEY})"  # noqa: S608 - our own names
    " SELECT announcement_id, status, coalesce(channel, ''), count(*),"
    " coalesce(sum(coalesce(segments, 0)), 0), count(fallback_from)"
    " FROM messages WHERE announcement_id IS NOT NULL"
    " GROUP BY announcement_id, status, coalesce(channel, '')",
    "UPDATE teams SET member_count = (SELECT count(*) FROM team_memberships AS m"
    " WHERE m.team_id = teams.id)",
)


async def rebuild_announcement_counts(conn: AsyncConnection) -> None:
    """Count every announcement's messages afresh (set-based; the caller commits)."""
    for statement in REBUILD:
        await conn.execute(text(statement))


FOLD = text(
    "WITH gone AS (DELETE FROM announcement_count_changes"  # noqa: S608 - our own names
    f" RETURNING {_KEY})"
    f" INSERT INTO announcement_counts ({_KEY})"
    " SELECT g.announcement_id, g.status, g.channel, sum(g.n), sum(g.segments), sum(g.fallback)"
    " FROM gone AS g WHERE EXISTS (SELECT 1 FROM announcements AS a"
    " WHERE a.id = g.announcement_id)"
    " GROUP BY g.announcement_id, g.status, g.channel"
    # One order for every folder, so two folding at once never deadlock.
    " ORDER BY g.announcement_id, g.status, g.channel"
    " ON CONFLICT (announcement_id, status, channel) DO UPDATE SET"
    " n = announcement_counts.n + excluded.n,"
    " segments = announcement_counts.segments + excluded.segments,"
    " fallback = announcement_counts.fallback + excluded.fallback"
)


async def fold_changes(session: AsyncSession, fold: TextClause) -> int:
    """Run `fold`, moving appended changes into their counters (PostgreSQL; nothing to do
    on SQLite). Returns the number of counter rows written; the caller commits."""
    if (await session.connection()).dialect.name != "postgresql":
        return 0
    result = await session.execute(fold)
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def fold_count_changes(session: AsyncSession) -> int:
    """Move the announcement counters' appended changes in (see `fold_changes`)."""
    return await fold_changes(session, FOLD)


@dataclass(frozen=True)
class CountRow:
    status: str
    channel: str | None  # None: no channel was chosen
    n: int
    segments: int
    fallback: int


READ = text(
    "SELECT status, channel, sum(n), sum(segments), sum(fallback) FROM ("  # noqa: S608
    f" SELECT {_KEY} FROM announcement_counts WHERE announcement_id = :a"
    f" UNION ALL SELECT {_KEY} FROM announcement_count_changes WHERE announcement_id = :a"
    ") AS c GROUP BY status, channel"
)


async def read_counts(session: AsyncSession, announcement_id: int) -> list[CountRow]:
    """The announcement's live messages by status and channel (rows that count none are
    left out)."""
    rows = (await session.execute(READ, {"a": announcement_id})).all()
    return [
        CountRow(status, channel or None, int(n), int(segments), int(fallback))
        for status, channel, n, segments, fallback in rows
        if n
    ]
