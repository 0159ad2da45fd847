"""`GET /metrics` reads totals kept by triggers (storage/metric_counts.py), never the
messages, attempts or deliveries themselves: after inbound texts, sends, webhook
deliveries and multi-row updates and deletes made in SQL (as any code path may), the
scrape must equal the grouped counts made directly over the tables, also after folding
(PostgreSQL) and after a full recount. And every statement behind the scrape is
index-backed: no SCAN of a large table (EXPLAIN on SQLite; with sequential scans off on
PostgreSQL)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import text

from routing.context import AppContext
from storage.metric_counts import REBUILD, fold_metric_changes
from tests.channels.twilio_case import SETTINGS
from tests.conftest import bearer, new_key
from tests.routing.fake_adapter import add_supporter, sent_message
from tests.test_query_plans_reports import assert_indexed, explained
from tests.webhooks_out.test_metrics_readyz import MakeClient, samples
from tests.webhooks_out.test_outgoing_webhooks import text_in

COUNTED = (
    "rallypoint_inbound_messages_total",
    "rallypoint_send_attempts",
    "rallypoint_webhook_deliveries",
)
LARGE = ("messages", "message_attempts", "outbox", "webhook_deliveries", "supporters")
Sample = tuple[str, tuple[tuple[str, str], ...]]


async def counted_in_sql(ctx: AppContext) -> dict[Sample, float]:
    """What the scrape must say, counted over the tables (the queries it used to run)."""
    want: dict[Sample, float] = {}
    async with ctx.sessions() as session:
        for channel, n in await session.execute(
            text(
                "SELECT channel, count(*) FROM messages WHERE direction = 'inbound'"
                " GROUP BY channel"
            )
        ):
            want[("rallypoint_inbound_messages_total", (("channel", channel),))] = n
        for channel, status, n in await session.execute(
            text("SELECT channel, status, count(*) FROM message_attempts GROUP BY 1, 2")
        ):
            want[("rallypoint_send_attempts", (("channel", channel), ("status", status)))] = n
        for status, n in await session.execute(
            text("SELECT status, count(*) FROM webhook_deliveries GROUP BY status")
        ):
            want[("rallypoint_webhook_deliveries", (("status", status),))] = n
    return want


async def scraped(client: httpx.AsyncClient) -> dict[Sample, float]:
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    return {k: v for k, v in samples(response.text).items() if k[0] in COUNTED and v}


async def assert_scrape_matches(client: httpx.AsyncClient) -> dict[Sample, float]:
    got = await scraped(client)
    assert got == await counted_in_sql(client.ctx)  # type: ignore[attr-defined]
    return got


async def busy_client(make_client: MakeClient) -> Any:
    client = await make_client(allow_private_webhooks=True, **SETTINGS)
    ctx = client.ctx
    client.headers.update(bearer(await new_key(ctx)))
    hook = await client.post(
        "/api/v1/webhooks",
        json={"url": "http://127.0.0.1:9/hook", "events": ["message.received"]},
    )
    assert hook.status_code == 201
    for n in range(3):
        await text_in(client, f"SM{n:032d}", f"+1415555011{n}", "hello")
    for n in range(3):
        phone = f"+1415555012{n}"
        supporter = await add_supporter(ctx, {"sms": phone}, name=f"Member {n}")
        await sent_message(ctx, supporter, "sms", phone, f"SMout{n}")
    return client


async def test_the_scrape_equals_the_tables_after_every_change(make_client: MakeClient) -> None:
    client = await busy_client(make_client)
    ctx = client.ctx
    got = await assert_scrape_matches(client)
    assert got[("rallypoint_inbound_messages_total", (("channel", "sms"),))] == 3
    assert got[("rallypoint_send_attempts", (("channel", "sms"), ("status", "sent")))] == 3
    assert got[("rallypoint_webhook_deliveries", (("status", "pending"),))] == 3

    changes = (
        # Multi-row statements (one statement trigger firing for several rows on PostgreSQL).
        "UPDATE message_attempts SET status = 'delivered' WHERE provider_message_id"
        " IN ('SMout0', 'SMout1')",
        "UPDATE webhook_deliveries SET status = 'delivered', due_at = NULL"
        " WHERE id = (SELECT min(id) FROM webhook_deliveries)",
        "UPDATE messages SET channel = 'whatsapp' WHERE id = (SELECT min(id) FROM messages"
        " WHERE direction = 'inbound')",
        "UPDATE messages SET direction = 'outbound' WHERE id = (SELECT max(id) FROM messages"
        " WHERE direction = 'inbound')",
        "DELETE FROM message_attempts WHERE provider_message_id = 'SMout2'",
        "DELETE FROM webhook_deliveries WHERE status = 'pending'",
        # A change to columns no metric counts moves nothing.
        "UPDATE message_attempts SET error = 'late' WHERE status = 'delivered'",
    )
    for change in changes:
        async with ctx.engine.begin() as conn:
            await conn.execute(text(change))
        got = await assert_scrape_matches(client)
    assert got == {
        ("rallypoint_inbound_messages_total", (("channel", "sms"),)): 1,
        ("rallypoint_inbound_messages_total", (("channel", "whatsapp"),)): 1,
        ("rallypoint_send_attempts", (("channel", "sms"), ("status", "delivered"))): 2,
        ("rallypoint_webhook_deliveries", (("status", "delivered"),)): 1,
    }

    # Folding the appended changes (PostgreSQL) and a full recount change nothing.
    async with ctx.sessions() as session:
        folded = await fold_metric_changes(session)
        await session.commit()
    assert (folded > 0) == (ctx.engine.dialect.name == "postgresql")
    assert await assert_scrape_matches(client) == got
    async with ctx.engine.begin() as conn:
        for statement in REBUILD:
            await conn.execute(text(statement))
    assert await assert_scrape_matches(client) == got


async def test_every_statement_behind_the_scrape_uses_an_index(make_client: MakeClient) -> None:
    client = await busy_client(make_client)
    ctx = client.ctx

    async def scrape() -> None:
        assert (await client.get("/metrics")).status_code == 200

    plans = await explained(ctx, scrape, large=LARGE)
    assert {t for s, _ in plans for t in ("outbox", "webhook_deliveries") if f" {t}" in s} == {
        "outbox",
        "webhook_deliveries",
    }
    assert_indexed(plans, ctx.engine.dialect.name == "postgresql", large=LARGE)


async def test_outbound_messages_fire_no_sqlite_counter_trigger(make_client: MakeClient) -> None:
    """The `messages` row triggers carry the inbound filter as their WHEN, so an outbound
    insert or delete (a fan-out of a million) runs no upsert at all (PostgreSQL's statement
    triggers are not row triggers)."""
    ctx = (await make_client()).ctx
    if ctx.engine.dialect.name != "sqlite":
        pytest.skip("row triggers are SQLite's")
    async with ctx.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = :t"),
            {"t": "messages"},
        )
        sql = {name: body.split(" BEGIN ")[0] for name, body in rows}
    assert "NEW.direction = 'inbound'" in sql["trg_messages_metric_insert"].split(" WHEN ")[1]
    assert "OLD.direction = 'inbound'" in sql["trg_messages_metric_delete"].split(" WHEN ")[1]
