"""POST /api/v1/supporters/{id}/erase: every row about the supporter deleted, their bytes
gone from the SQLite file and its WAL, only a keyed hash of an opted-out address kept, so a
later inbound, create or import of that address is opted out again."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func
from sqlmodel import SQLModel, col, select

from routing.people.erasure import HANDLED_REFERENCES
from storage.models import (
    AuditEvent,
    ConsentEvent,
    Conversation,
    ConversationNote,
    DoNotContact,
    Message,
    MessageAttempt,
    OutboxItem,
    Supporter,
    SupporterAddress,
)
from storage.sqlite_lane import SqliteLane
from tests.channels.twilio_case import SETTINGS, signed_post, sms_form
from tests.conftest import bearer, new_key

MakeClient = Callable[..., Awaitable[httpx.AsyncClient]]
API = "/api/v1"
PHONE = "+14155550177"
NAME = "Zebulon Quixote-Marsh"
BODY = "PURPLE-OCTOPUS-7731 meet behind the depot"
_sids = iter(range(10**6, 10**7))


async def organizer(make_client: MakeClient, **overrides: Any) -> httpx.AsyncClient:
    client = await make_client(**SETTINGS, **overrides)
    client.headers.update(bearer(await new_key(client.ctx)))  # type: ignore[attr-defined]
    return client


async def sms(client: httpx.AsyncClient, body: str, sender: str = PHONE) -> None:
    request = signed_post(sms_form(f"SM{next(_sids):032d}", sender, body))
    answer = await client.post(request.path, headers=request.headers, content=request.content)
    assert answer.status_code == 200, answer.text


async def api(client: httpx.AsyncClient, method: str, path: str, **kwargs: Any) -> Any:
    answer = await client.request(method, API + path, **kwargs)
    assert answer.is_success, answer.text
    return answer.json() if answer.content else None


async def count(client: httpx.AsyncClient, model: Any, *where: Any) -> int:
    async with client.ctx.sessions() as session:  # type: ignore[attr-defined]
        stmt = select(func.count()).select_from(model)
        for clause in where:
            stmt = stmt.where(clause)
        return int((await session.exec(stmt)).one())


async def zebulon(client: httpx.AsyncClient) -> int:
    """A supporter with a team, tags, an announcement, an inbound message, a reply queued
    and an opt-out."""
    await api(client, "POST", "/teams", json={"name": "Depot"})
    made = await api(
        client,
        "POST",
        "/supporters",
        json={
            "name": NAME,
            "addresses": [{"channel": "sms", "address": PHONE}],
            "tags": ["driver"],
            "teams": ["Depot"],
        },
    )
    await api(
        client,
        "POST",
        "/announcements",
        json={"body": "Rally at 6", "audience": {"teams": ["Depot"]}},
    )
    await sms(client, BODY)
    await api(client, "POST", f"/supporters/{made['id']}/messages", json={"body": "Thanks Zeb!"})
    await sms(client, "STOP")
    return int(made["id"])


def database_files(client: httpx.AsyncClient) -> list[Path]:
    url = client.ctx.settings.database_url  # type: ignore[attr-defined]
    path = Path(url.split("///", 1)[1])
    return [p for p in (path, Path(f"{path}-wal")) if p.exists()]


def raw_bytes(client: httpx.AsyncClient) -> bytes:
    return b"".join(p.read_bytes() for p in database_files(client))


async def test_erasure_deletes_every_row_and_keeps_the_opt_out(make_client: MakeClient) -> None:
    client = await organizer(make_client)
    sid = await zebulon(client)
    announcement = (await api(client, "GET", "/announcements"))["items"][0]
    before = await api(client, "GET", f"/announcements/{announcement['id']}")
    assert await count(client, Message, col(Message.supporter_id) == sid) >= 4
    assert await count(client, OutboxItem) >= 1
    convo = (await api(client, "GET", f"/conversations?supporter_id={sid}"))["items"][0]
    await api(client, "POST", f"/conversations/{convo['id']}/notes", json={"body": "Zeb drives"})
    assert await count(client, ConversationNote) == 1

    answer = await client.post(f"{API}/supporters/{sid}/erase")
    assert answer.status_code == 204
    assert (await client.get(f"{API}/supporters/{sid}")).status_code == 404
    assert (await client.post(f"{API}/supporters/{sid}/erase")).status_code == 404
    for model, column in (
        (Message, Message.supporter_id),
        (ConsentEvent, ConsentEvent.supporter_id),
        (Conversation, Conversation.supporter_id),
        (SupporterAddress, SupporterAddress.supporter_id),
    ):
        assert await count(client, model, col(column) == sid) == 0
    assert await count(client, MessageAttempt) == 0
    assert await count(client, ConversationNote) == 0
    assert await count(client, OutboxItem) == 0
    assert await count(client, Supporter) == 0
    assert await count(client, DoNotContact) == 1
    async with client.ctx.sessions() as session:  # type: ignore[attr-defined]
        listed = (await session.exec(select(DoNotContact.address_hash))).one()
        audit = (
            await session.exec(select(AuditEvent).where(AuditEvent.action == "supporter_erased"))
        ).one()
    assert PHONE not in listed and len(listed) == 64
    assert audit.target == f"supporter:{sid}" and audit.actor is not None
    # The announcement keeps its counts, though the message is gone.
    after = await api(client, "GET", f"/announcements/{announcement['id']}")
    assert after["recipients"] == before["recipients"] == 1
    assert before["counts"] == {"queued": 1}  # no dispatcher runs in these tests
    assert after["counts"] == {"skipped": 1}  # erased before it was sent: never will be

    # The same number writes again: a new supporter, opted out from the start.
    await sms(client, "hello again")
    again = (await api(client, "GET", "/supporters"))["items"]
    assert len(again) == 1 and again[0]["name"] == PHONE and again[0]["opted_out"] is True
    assert again[0]["source"] == "inbound" and again[0]["tags"] == []
    # Created or imported by an organizer: opted out too.
    await api(client, "POST", f"/supporters/{again[0]['id']}/erase")
    made = await api(
        client,
        "POST",
        "/supporters",
        json={"name": "Z", "addresses": [{"channel": "whatsapp", "address": PHONE}]},
    )
    assert made["opted_out"] is True
    await api(client, "POST", f"/supporters/{made['id']}/erase")
    files = {"file": ("s.csv", f"name,phone\nZed,{PHONE}\nAnn,+14155550100\n".encode(), "text/csv")}
    summary = await api(client, "POST", "/supporters/import", files=files)
    assert summary["created"] == 2
    people = {s["name"]: s["opted_out"] for s in (await api(client, "GET", "/supporters"))["items"]}
    assert people == {"Zed": True, "Ann": False}


async def test_erased_bytes_leave_the_sqlite_file_and_wal(make_client: MakeClient) -> None:
    client = await organizer(make_client)
    if client.ctx.engine.dialect.name != "sqlite":  # type: ignore[attr-defined]
        pytest.skip("reads the SQLite files")
    sid = await zebulon(client)
    raw = raw_bytes(client)
    assert BODY.encode() in raw and PHONE.encode() in raw and NAME.encode() in raw
    assert (await client.post(f"{API}/supporters/{sid}/erase")).status_code == 204
    raw = raw_bytes(client)
    assert BODY.encode() not in raw
    assert PHONE.encode() not in raw
    assert NAME.encode() not in raw


async def test_roles_and_a_team_lead(make_client: MakeClient) -> None:
    client = await organizer(make_client)
    sid = await zebulon(client)
    ctx = client.ctx  # type: ignore[attr-defined]
    team = (await api(client, "GET", "/teams"))["items"][0]["id"]
    lead = bearer(await new_key(ctx, "team_lead", team))
    assert (await client.post(f"{API}/supporters/{sid}/erase", headers=lead)).status_code == 403
    coordinator = bearer(await new_key(ctx, "coordinator"))
    assert (
        await client.post(f"{API}/supporters/999/erase", headers=coordinator)
    ).status_code == 404
    assert (
        await client.post(f"{API}/supporters/{sid}/erase", headers=coordinator)
    ).status_code == 204


async def test_a_configured_key_hashes_the_list(make_client: MakeClient) -> None:
    key = "k" * 40
    client = await organizer(make_client, erasure_key=key)
    sid = await zebulon(client)
    await api(client, "POST", f"/supporters/{sid}/erase")
    expected = hmac.new(key.encode(), f"phone:{PHONE}".encode(), hashlib.sha256).hexdigest()
    async with client.ctx.sessions() as session:  # type: ignore[attr-defined]
        assert (await session.exec(select(DoNotContact.address_hash))).all() == [expected]
    # Through SQLAlchemy (no SQLite lane) on WhatsApp: the same number, the same person.
    other = await organizer(make_client, erasure_key=key, sqlite_lane=False)
    form = sms_form(f"SM{next(_sids):032d}", f"whatsapp:{PHONE}", "back")
    form["To"] = SETTINGS["twilio_whatsapp_from"]
    request = signed_post(form)
    answer = await other.post(request.path, headers=request.headers, content=request.content)
    assert answer.status_code == 200
    (back,) = (await api(other, "GET", "/supporters"))["items"]
    assert back["addresses"][0]["channel"] == "whatsapp" and back["opted_out"] is True
    consent = await api(other, "GET", f"/supporters/{back['id']}/consent")
    assert [e["action"] for e in consent["items"]] == ["opt_out"]


def test_erasure_knows_every_reference() -> None:
    """A table added later that refers to supporters, conversations or messages must be
    taught to erase_supporter: a cascade nobody checked, or a SET NULL, would keep data."""
    references = {
        (table.name, fk.parent.name)
        for table in SQLModel.metadata.sorted_tables
        for fk in table.foreign_keys
        if fk.column.table.name in ("supporters", "conversations", "messages")
    }
    assert references == HANDLED_REFERENCES


async def test_every_sqlite_connection_deletes_securely(make_client: MakeClient) -> None:
    """The engine's connections and the ingest lane's overwrite deleted content."""
    client = await organizer(make_client)
    ctx = client.ctx  # type: ignore[attr-defined]
    if ctx.engine.dialect.name != "sqlite":
        pytest.skip("SQLite pragmas")
    async with ctx.engine.connect() as connection:
        assert (await connection.exec_driver_sql("PRAGMA secure_delete")).scalar() == 1
    lane = SqliteLane(str(database_files(client)[0]))
    try:
        assert await lane.run(lambda c: c.execute("PRAGMA secure_delete").fetchone()[0]) == 1
    finally:
        await lane.aclose()
