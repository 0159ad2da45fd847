"""The inbox's query walks an index in its own order (no sort of every conversation): the
plan SQLite chooses for the statement `conversation_page` runs, on a database the
migrations built. Alembic cannot compare expression indexes, so this also checks the
migration made them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlmodel.ext.asyncio.session import AsyncSession

from gateway.api.conversations import conversation_page
from gateway.auth import Principal
from routing.dispatch.silence import due_deadlines
from storage.db import make_engine
from storage.migrate import upgrade


async def _plan(tmp_path: Path, **filters: Any) -> str:
    url = f"sqlite:///{tmp_path / 'plans.db'}"
    await upgrade(url)
    engine = make_engine(url)
    seen: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if "FROM conversations" in statement:
            seen.append((statement, params))

    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    async with AsyncSession(engine) as session:
        await conversation_page(session, Principal(key_id=1, role="coordinator"), **filters)
        statement, params = seen[-1]
        rows = await session.connection()
        plan = (await rows.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", params)).all()
    await engine.dispose()
    return " | ".join(str(row[-1]) for row in plan)


async def test_the_inbox_reads_its_first_page_from_the_activity_index(tmp_path: Path) -> None:
    plan = await _plan(tmp_path)
    assert "ix_conversations_activity" in plan, plan
    assert "TEMP B-TREE" not in plan, plan


async def test_the_unread_inbox_reads_its_page_from_the_unread_activity_index(
    tmp_path: Path,
) -> None:
    plan = await _plan(tmp_path, unread=True)
    assert "ix_conversations_unread_activity" in plan, plan
    assert "TEMP B-TREE" not in plan, plan


async def test_the_indexes_hold_the_expression_the_inbox_sorts_by(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'plans.db'}"
    await upgrade(url)
    engine = make_engine(url)
    async with engine.connect() as conn:
        sql = dict(
            (
                await conn.execute(
                    text("SELECT name, sql FROM sqlite_master WHERE tbl_name = 'conversations'")
                )
            ).all()
        )
    await engine.dispose()
    assert "coalesce(last_message_at, created_at)" in (sql["ix_conversations_activity"] or "")
    assert "ix_conversations_unread" not in sql


async def test_the_silence_scan_reads_due_deadlines_from_their_partial_index(
    tmp_path: Path,
) -> None:
    """The fallback-on-silence scan (routing/dispatch/silence.py) walks only the pending
    deadlines, in deadline order, never the messages table."""
    url = f"sqlite:///{tmp_path / 'plans.db'}"
    await upgrade(url)
    engine = make_engine(url)
    seen: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if "fallback_at" in statement:
            seen.append((statement, params))

    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    async with AsyncSession(engine) as session:
        await session.execute(due_deadlines(datetime(2026, 3, 4, tzinfo=UTC)))
        statement, params = seen[-1]
        rows = await session.connection()
        found = (await rows.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", params)).all()
    await engine.dispose()
    plan = " | ".join(str(row[-1]) for row in found)
    assert "ix_messages_fallback_at" in plan, plan
    assert "TEMP B-TREE" not in plan, plan
