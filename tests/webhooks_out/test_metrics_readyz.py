"""`GET /metrics` parsed with prometheus_client's own parser, figures checked against what
the test put in; `GET /readyz` against databases at and behind the newest migration."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from prometheus_client.parser import text_string_to_metric_families

from channels.base import InboundMessage
from gateway.app import create_app, shutdown
from routing.inbound.spool import spool_for
from routing.inbound.spool_codec import encode_events
from storage.migrate import head_revision, upgrade
from storage.models import OutboxItem
from storage.spool import now_ms
from tests.channels.twilio_case import SETTINGS
from tests.conftest import FakeClock, bearer, make_settings, new_key
from tests.routing.fake_adapter import add_supporter, sent_message
from tests.webhooks_out.test_outgoing_webhooks import text_in

MakeClient = Callable[..., Awaitable[httpx.AsyncClient]]


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_metrics_count_what_the_database_holds(
    make_client: MakeClient, clock: FakeClock
) -> None:
    client = await make_client(allow_private_webhooks=True, **SETTINGS)
    ctx = client.ctx  # type: ignore[attr-defined]
    client.headers.update(bearer(await new_key(ctx)))
    empty = samples((await client.get("/metrics")).text)
    assert empty[("rallypoint_outbox_due", ())] == 0
    assert empty[("rallypoint_spool_records", ())] == 0

    await text_in(client, "SM" + "1" * 32, "+14155550101", "hello")
    await text_in(client, "SM" + "2" * 32, "+14155550102", "hi")
    hook = await client.post(
        "/api/v1/webhooks",
        json={"url": "http://127.0.0.1:9/hook", "events": ["message.received"]},
    )
    assert hook.status_code == 201
    await text_in(client, "SM" + "3" * 32, "+14155550103", "hey")
    ada = await add_supporter(ctx, {"sms": "+14155550104"})
    message_id = await sent_message(ctx, ada, "sms", "+14155550104", "SMout")
    async with ctx.sessions() as session:
        session.add(
            OutboxItem(
                message_id=message_id,
                due_at=clock() - timedelta(seconds=90),
                created_at=clock(),
            )
        )
        await session.commit()
    clock.advance(seconds=30)

    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    got = samples(response.text)
    assert got[("rallypoint_inbound_messages_total", (("channel", "sms"),))] == 3
    assert got[("rallypoint_send_attempts", (("channel", "sms"), ("status", "sent")))] == 1
    assert got[("rallypoint_outbox_due", ())] == 1
    assert got[("rallypoint_outbox_oldest_due_age_seconds", ())] == 120
    assert got[("rallypoint_webhook_deliveries", (("status", "pending"),))] == 1
    assert got[("rallypoint_webhook_deliveries_due", ())] == 1
    assert got[("rallypoint_webhook_deliveries_oldest_due_age_seconds", ())] == 30
    assert got[("rallypoint_webhook_subscriptions_paused", ())] == 0
    assert all(name.startswith("rallypoint_") for name, _ in got)


async def test_metrics_report_the_spool(make_client: MakeClient) -> None:
    client = await make_client()
    ctx = client.ctx  # type: ignore[attr-defined]
    # Written as the spool writes a request the database could not take in time (not
    # through `append`, whose replay would drain it into the database at once).
    record = encode_events([InboundMessage("sms", "+14155550101", "SMspool", "hi")], "twilio")
    spool_for(ctx).writer.append(record, now_ms())
    got = samples((await client.get("/metrics")).text)
    assert got[("rallypoint_spool_records", ())] == 1
    assert got[("rallypoint_spool_bytes", ())] > 0


async def test_readyz_at_head(make_client: MakeClient) -> None:
    client = await make_client()
    response = await client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json()["revision"] == head_revision()
    assert samples((await client.get("/metrics")).text)[("rallypoint_ready", ())] == 1


async def test_scrapes_read_the_migration_scripts_once(
    make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = await make_client()
    head_revision.cache_clear()
    built: list[object] = []
    from_config = ScriptDirectory.from_config

    def counted(config: Config) -> ScriptDirectory:
        built.append(config)
        return from_config(config)

    monkeypatch.setattr(ScriptDirectory, "from_config", counted)
    for _ in range(2):
        assert samples((await client.get("/metrics")).text)[("rallypoint_ready", ())] == 1
        assert (await client.get("/readyz")).json()["head"] == head_revision()
    assert len(built) == 1


async def test_readyz_is_503_behind_the_newest_migration(tmp_path: Path, clock: FakeClock) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    await upgrade(url, "00193df41682")  # the migration before this one's
    app = create_app(make_settings(url, spool_dir=str(tmp_path / "spool")), clock=clock)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
    try:
        behind = await client.get("/readyz")
        assert behind.status_code == 503
        assert behind.json()["revision"] == "00193df41682"
        scrape = await client.get("/metrics")  # 503 where a table it reads is not there yet
        assert scrape.status_code == 503 or samples(scrape.text)[("rallypoint_ready", ())] == 0
        await upgrade(url)
        assert (await client.get("/readyz")).status_code == 200
        assert samples((await client.get("/metrics")).text)[("rallypoint_ready", ())] == 1
    finally:
        await client.aclose()
        await shutdown(app.state.ctx)


async def test_readyz_is_503_when_never_migrated(tmp_path: Path, clock: FakeClock) -> None:
    url = f"sqlite:///{tmp_path / 'blank.db'}"
    app = create_app(make_settings(url, spool_dir=str(tmp_path / "spool")), clock=clock)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
    try:
        response = await client.get("/readyz")
        assert response.status_code == 503 and response.json()["revision"] is None
    finally:
        await client.aclose()
        await shutdown(app.state.ctx)
