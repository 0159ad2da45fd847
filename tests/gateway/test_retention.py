"""RALLYPOINT_RETENTION_DAYS: bodies, raw payloads and attachments' metadata older than
that are deleted by the background service; statuses and counts stay."""

from __future__ import annotations

from sqlmodel import col, select

from gateway.background import background_services
from gateway.retention import RetentionService
from routing.people.retention import purge_old_bodies
from storage.models import Message
from tests.conftest import FakeClock
from tests.gateway.test_erasure import MakeClient, api, organizer, raw_bytes, sms

OLD = "TANGERINE-LIGHTHOUSE-4417 old news"
NEW = "fresh words"


async def messages(client: object) -> dict[str, Message]:
    async with client.ctx.sessions() as session:  # type: ignore[attr-defined]
        rows = (await session.exec(select(Message).order_by(col(Message.id)))).all()
    return {f"{m.direction}:{m.id}": m for m in rows}


async def test_old_bodies_go_statuses_stay(make_client: MakeClient, clock: FakeClock) -> None:
    client = await organizer(make_client, retention_days=30)
    ctx = client.ctx  # type: ignore[attr-defined]
    service = next(s for s in background_services(ctx) if isinstance(s, RetentionService))
    await sms(client, OLD)
    sid = (await api(client, "GET", "/supporters"))["items"][0]["id"]
    await api(client, "POST", f"/supporters/{sid}/messages", json={"body": "still queued"})
    clock.advance(days=31)
    await sms(client, NEW)
    before = await api(client, "GET", f"/supporters/{sid}")
    assert await service.run_once() == 1
    rows = list((await messages(client)).values())
    old, queued, new = rows
    assert (old.body, old.raw, old.attachments, old.status) == ("", None, [], "received")
    assert old.provider_message_id is not None and old.channel == "sms"
    assert queued.body == "still queued" and queued.status == "queued"
    assert new.body == NEW and new.raw is not None
    assert (await api(client, "GET", f"/supporters/{sid}"))["stats"] == before["stats"]
    if ctx.engine.dialect.name == "sqlite":
        assert OLD.encode() not in raw_bytes(client)
    assert await service.run_once() == 0  # nothing left to do


async def test_batches_and_off_by_default(make_client: MakeClient, clock: FakeClock) -> None:
    client = await organizer(make_client)
    ctx = client.ctx  # type: ignore[attr-defined]
    assert not any(isinstance(s, RetentionService) for s in background_services(ctx))
    assert await RetentionService(ctx).run_once() == 0
    for n in range(5):
        await sms(client, f"note {n}")
    clock.advance(days=3)
    assert await purge_old_bodies(ctx.sessions, clock(), 2, batch=2) == 5
    assert {m.body for m in (await messages(client)).values()} == {""}
