"""GET /supporters/{id}/export, GET /audit, API key expiry (REST and CLI)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

from gateway.cli import main
from storage.clock import utcnow
from storage.models import ApiKey
from tests.conftest import FakeClock, bearer, new_key
from tests.gateway.test_erasure import BODY, NAME, PHONE, MakeClient, api, organizer, zebulon

API = "/api/v1"


async def test_export_holds_everything_about_them(make_client: MakeClient) -> None:
    client = await organizer(make_client)
    sid = await zebulon(client)
    data = await api(client, "GET", f"/supporters/{sid}/export")
    assert data["supporter"]["name"] == NAME and data["supporter"]["opted_out"] is True
    assert [(a["channel"], a["address"]) for a in data["addresses"]] == [("sms", PHONE)]
    assert data["tags"] == ["driver"] and [t["name"] for t in data["teams"]] == ["Depot"]
    assert [e["action"] for e in data["consent_history"]] == ["opt_out"]
    bodies = {m["body"]: m for m in data["messages"]}
    assert {"Rally at 6", BODY, "Thanks Zeb!", "STOP"} <= set(bodies)
    assert bodies[BODY]["status"] == "received" and bodies[BODY]["direction"] == "inbound"
    assert bodies["Thanks Zeb!"]["status"] == "queued"
    assert data["conversation"] is not None and data["poll_answers"] == []


async def test_a_team_lead_exports_their_team_only(make_client: MakeClient) -> None:
    client = await organizer(make_client)
    sid = await zebulon(client)
    ctx = client.ctx  # type: ignore[attr-defined]
    other = (await api(client, "POST", "/teams", json={"name": "Other"}))["id"]
    theirs = bearer(await new_key(ctx, "team_lead", other))
    assert (await client.get(f"{API}/supporters/{sid}/export", headers=theirs)).status_code == 404
    depot = (await api(client, "GET", "/teams"))["items"][0]["id"]
    ours = bearer(await new_key(ctx, "team_lead", depot))
    answer = await client.get(f"{API}/supporters/{sid}/export", headers=ours)
    assert answer.status_code == 200 and answer.json()["supporter"]["id"] == sid


async def test_audit_lists_keys_exports_erasures_imports(make_client: MakeClient) -> None:
    client = await organizer(make_client)
    sid = await zebulon(client)
    key = await api(client, "POST", "/keys", json={"role": "coordinator"})
    await api(client, "DELETE", f"/keys/{key['id']}")
    await api(client, "GET", f"/supporters/{sid}/export")
    await api(client, "POST", f"/supporters/{sid}/erase")
    files = {"file": ("s.csv", b"name,phone\nAnn,+14155550100\n", "text/csv")}
    await api(client, "POST", "/supporters/import", files=files)
    page = await api(client, "GET", "/audit")
    actions = [item["action"] for item in page["items"]]
    assert actions == [
        "supporters_imported",
        "supporter_erased",
        "supporter_exported",
        "key_revoked",
        "key_created",
    ]
    first = page["items"][0]
    assert set(first) == {"id", "at", "actor", "action", "target", "ip"}
    assert first["target"] == "created=1 updated=0 rejected=0" and first["actor"].startswith("key:")
    assert page["items"][3]["target"] == f"key:{key['id']}"
    # Filters and pages, newest first.
    only = await api(client, "GET", "/audit", params={"action": "key_created"})
    assert [i["action"] for i in only["items"]] == ["key_created"]
    assert (await api(client, "GET", "/audit", params={"actor": "key:999"}))["items"] == []
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        got = await api(client, "GET", "/audit", params=params)
        seen += [i["action"] for i in got["items"]]
        cursor = got["next_cursor"]
        if not cursor:
            break
    assert seen == actions
    # Admins only.
    coordinator = bearer(await new_key(client.ctx, "coordinator"))  # type: ignore[attr-defined]
    assert (await client.get(f"{API}/audit", headers=coordinator)).status_code == 403
    assert (await client.get(f"{API}/audit", params={"cursor": "nope"})).status_code == 422


async def test_an_expired_key_is_refused(client: httpx.AsyncClient, clock: FakeClock) -> None:
    soon = clock() + timedelta(days=1)
    made = await api(
        client, "POST", "/keys", json={"role": "coordinator", "expires_at": soon.isoformat()}
    )
    assert made["expires_at"] == soon.isoformat().replace("+00:00", "Z")
    assert (await client.get(f"{API}/teams", headers=bearer(made["key"]))).status_code == 200
    clock.advance(days=1)
    assert (await client.get(f"{API}/teams", headers=bearer(made["key"]))).status_code == 401
    naive = await client.post(
        f"{API}/keys", json={"role": "admin", "expires_at": "2030-01-01T00:00"}
    )
    assert naive.status_code == 422


@pytest.fixture
def cli_env(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RALLYPOINT_DATABASE_URL", database_url)
    monkeypatch.chdir(tmp_path)  # no stray .env


async def test_cli_expires_in(
    client: httpx.AsyncClient, clock: FakeClock, cli_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    made_at = utcnow()
    argv = ["keys", "create", "--role", "coordinator", "--expires-in", "90d"]
    assert await asyncio.to_thread(main, argv) == 0
    key = capsys.readouterr().out.strip()
    async with client.ctx.sessions() as session:  # type: ignore[attr-defined]
        row = (await session.exec(select(ApiKey).where(ApiKey.prefix == key[:8]))).one()
    assert row.expires_at is not None
    assert timedelta(days=90) <= row.expires_at - made_at < timedelta(days=90, minutes=1)
    assert await asyncio.to_thread(main, ["keys", "list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[0].endswith("\texpires_at")
    assert listed[-1].endswith("\t" + row.expires_at.isoformat(timespec="seconds"))
    clock.set(row.expires_at - timedelta(seconds=1))
    assert (await client.get(f"{API}/teams", headers=bearer(key))).status_code == 200
    clock.set(row.expires_at)
    assert (await client.get(f"{API}/teams", headers=bearer(key))).status_code == 401
    for bad in ("90", "0d", "3m", "-1d"):
        assert await asyncio.to_thread(main, [*argv[:-2], f"--expires-in={bad}"]) == 2
        assert "--expires-in" in capsys.readouterr().err
    audit = await api(client, "GET", "/audit", params={"actor": "cli"})
    assert [i["action"] for i in audit["items"]] == ["key_created"]


async def test_json_bodies_over_the_limit_are_refused(make_client: MakeClient) -> None:
    client = await organizer(make_client, max_json_bytes=2000)
    small = {"name": "Ann", "tags": ["t" * 50] * 10}
    assert (await client.post(f"{API}/supporters", json=small)).status_code == 201
    big = {"name": "Ann", "tags": ["t" * 50] * 60}
    answer = await client.post(f"{API}/supporters", json=big)
    assert answer.status_code == 413
    assert "RALLYPOINT_MAX_JSON_BYTES" in answer.json()["detail"]

    async def streamed() -> AsyncIterator[bytes]:
        yield b'{"name": "Bo", "tags": ['
        for _ in range(100):
            yield b'"' + b"t" * 50 + b'",'
        yield b'"t"]}'

    answer = await client.post(
        f"{API}/supporters", content=streamed(), headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 413
    assert [s["name"] for s in (await api(client, "GET", "/supporters"))["items"]] == ["Ann"]
    # A CSV import (multipart) has its own limit.
    rows = "".join(f"P{i},+1415555{i:04d}\n" for i in range(200)).encode()
    files = {"file": ("s.csv", b"name,phone\n" + rows, "text/csv")}
    assert (await api(client, "POST", "/supporters/import", files=files))["created"] == 200
