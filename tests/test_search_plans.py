"""Every query behind the supporter search and the conversation list (the REST API and the
console read the same functions) is served by an index, on SQLite and on PostgreSQL: the
plan the database chooses for the statements they run, on a schema the migrations made.

SQLite: EXPLAIN QUERY PLAN has no plain SCAN of supporters, addresses, conversations or
search terms (walking an index in order, "SCAN ... USING INDEX", is how a page is read
without a sort), and the inbox's pages filtered by a column of the conversation read
their index in order, with no sort at all. PostgreSQL (RALLYPOINT_TEST_DATABASE_URL):
EXPLAIN, with sequential scans, bitmaps and sorts priced out as the tables are tiny,
reads those tables by an index only, and the same pages unsorted."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from gateway.api.conversations import conversation_page
from gateway.api.supporter_search import SupporterFilters, supporter_page
from gateway.auth import Principal
from storage.db import make_engine
from storage.models import Team

NOW = datetime(2026, 3, 4, tzinfo=UTC)
COORDINATOR = Principal(key_id=1, role="coordinator")
LEAD = Principal(key_id=2, role="team_lead", team_id=1)
TABLES = ("supporters", "supporter_addresses", "conversations", "supporter_search_terms")
# Filters on the conversation itself: its page is read from an index in order, unsorted.
SORTLESS = (
    {},
    {"unread": True},
    {"status": "resolved"},
    {"status": "snoozed"},
    {"status": "open"},
    {"assigned_user_id": 1},
    {"unread": False, "status": "open"},
)
CONVERSATION_FILTERS = (
    *SORTLESS,
    {"team": "North"},
    {"assigned_to": "joe"},
    {"channel": "whatsapp"},
    {"supporter_id": 1},
    {"search": "ada"},
    {"search": "ada quill"},
    {"search": "+1 415 555 0100"},
    {"unread": True, "status": "open", "team": "North"},
    {"status": "resolved", "assigned_user_id": 1, "channel": "sms"},
    {"search": "0100", "status": "open", "assigned_to": "joe"},
)
SEARCHES = (
    SupporterFilters(q="ada"),
    SupporterFilters(q="ada quill"),
    SupporterFilters(q="0100"),
    SupporterFilters(q="ada@example.org"),
    SupporterFilters(q="ada", team="North"),
    SupporterFilters(q="0100", tag="driver", channel="sms"),
)


async def _statements(database_url: str, run: Any) -> list[tuple[str, str]]:
    """(statement, its plan as one line per step) of every SELECT `run(session)` makes."""
    engine = make_engine(database_url)
    seen: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, params))

    async with AsyncSession(engine) as session:
        if (await session.exec(select(Team).where(Team.name == "North"))).first() is None:
            session.add(Team(name="North", created_at=NOW))
            await session.commit()
        event.listen(engine.sync_engine, "before_cursor_execute", capture)
        await run(session)
        event.remove(engine.sync_engine, "before_cursor_execute", capture)
        conn = await session.connection()
        out = []
        postgres = conn.dialect.name == "postgresql"
        for statement, params in seen:
            if not re.search(r"FROM (supporters|conversations|supporter_search_terms)", statement):
                continue
            if postgres:
                # Tiny tables: priced out, a sequential scan, a bitmap or a sort is chosen
                # only where no index can serve the query (or its order).
                for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):
                    await conn.execute(text(f"SET LOCAL {setting} = off"))
                rows = await conn.exec_driver_sql(f"EXPLAIN {statement}", params)
                plan = "\n".join(str(r[0]) for r in rows)
            else:
                rows = await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", params)
                plan = "\n".join(str(r[-1]) for r in rows)
            out.append((statement, plan))
        await session.rollback()
    await engine.dispose()
    assert out, "no statement seen"
    return out


def _check(statement: str, plan: str, *, sortless: bool = False) -> None:
    where = f"\n{plan}\n--- for ---\n{statement}"
    for table in TABLES:
        assert f"Seq Scan on {table}" not in plan, where
        assert not re.search(rf"^SCAN {table}( |$)(?!USING)", plan, re.M), where
    if sortless:
        assert "TEMP B-TREE" not in plan and "Sort" not in plan, where


@pytest.mark.parametrize("filters", CONVERSATION_FILTERS, ids=str)
async def test_every_conversation_filter_reads_an_index(
    database_url: str, filters: dict[str, Any]
) -> None:
    for principal in (COORDINATOR, LEAD):

        async def run(session: AsyncSession, who: Principal = principal) -> None:
            await conversation_page(session, who, now=NOW, limit=50, **filters)

        for statement, plan in await _statements(database_url, run):
            sortless = filters in SORTLESS and principal is COORDINATOR
            _check(statement, plan, sortless=sortless and "conversations" in statement)


@pytest.mark.parametrize("filters", SEARCHES, ids=lambda f: repr(f.q) + (f.team or ""))
async def test_every_supporter_search_reads_the_search_index(
    database_url: str, filters: SupporterFilters
) -> None:
    for principal in (COORDINATOR, LEAD):

        async def run(session: AsyncSession, who: Principal = principal) -> None:
            await supporter_page(session, who, filters, now=NOW, limit=50, cursor=None)

        plans = await _statements(database_url, run)
        for statement, plan in plans:
            _check(statement, plan)
            assert "supporter_search_terms" in statement
            assert re.search(r"supporter_search_terms|pk_supporter_search_terms", plan), plan
