"""API keys over REST (/api/v1/keys, admins only) and the CLI (`rallypoint keys ...`):
listed without secrets, created once, revoked at once, never the last admin key."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from gateway.auth import hash_key
from gateway.cli import main
from gateway.keys import LastAdminKey, revoke_key
from tests.conftest import FakeClock, bearer, new_key
from tests.gateway.seed import make_team

API = "/api/v1"
MakeClient = Callable[..., Awaitable[httpx.AsyncClient]]
KEY_LINE = re.compile(r"rp_[A-Za-z0-9_-]{43}\n")


async def listed(client: httpx.AsyncClient) -> dict[int, dict[str, object]]:
    response = await client.get(f"{API}/keys")
    assert response.status_code == 200, response.text
    return {k["id"]: k for k in response.json()["items"]}


async def test_admin_creates_lists_and_revokes_keys(client: httpx.AsyncClient) -> None:
    north = await make_team(client.ctx, "North")  # type: ignore[attr-defined]
    made = await client.post(f"{API}/keys", json={"role": "coordinator", "name": "Joe's laptop"})
    assert made.status_code == 201, made.text
    coordinator = made.json()
    key = coordinator["key"]
    assert KEY_LINE.fullmatch(key + "\n")
    assert (await client.get(f"{API}/teams", headers=bearer(key))).status_code == 200
    lead = await client.post(f"{API}/keys", json={"role": "team_lead", "team": "North"})
    assert lead.status_code == 201, lead.text
    assert lead.json()["team"] == {"id": north, "name": "North"}

    response = await client.get(f"{API}/keys")
    for secret in (key, hash_key(key), lead.json()["key"]):
        assert secret not in response.text
    keys = {k["id"]: k for k in response.json()["items"]}
    assert len(keys) == 3  # the client's own admin key too
    row = keys[coordinator["id"]]
    assert "key" not in row and "key_hash" not in row
    assert row["role"] == "coordinator" and row["name"] == "Joe's laptop"
    assert row["prefix"] == key[:8] and row["team"] is None
    assert row["created_at"] == "2026-03-04T15:00:00Z"
    assert row["last_used_at"] == "2026-03-04T15:00:00Z"  # the GET /teams above
    assert row["revoked_at"] is None
    assert keys[lead.json()["id"]]["team"] == {"id": north, "name": "North"}

    client.ctx.clock.advance(minutes=5)  # type: ignore[attr-defined]
    revoked = await client.delete(f"{API}/keys/{coordinator['id']}")
    assert revoked.status_code == 204
    assert (await client.get(f"{API}/teams", headers=bearer(key))).status_code == 401
    assert (await listed(client))[coordinator["id"]]["revoked_at"] == "2026-03-04T15:05:00Z"
    # Revoking again changes nothing; an unknown id is 404.
    client.ctx.clock.advance(minutes=5)  # type: ignore[attr-defined]
    assert (await client.delete(f"{API}/keys/{coordinator['id']}")).status_code == 204
    assert (await listed(client))[coordinator["id"]]["revoked_at"] == "2026-03-04T15:05:00Z"
    assert (await client.delete(f"{API}/keys/999")).status_code == 404
    # The team lead's key was not touched.
    lead_key = bearer(lead.json()["key"])
    assert (await client.get(f"{API}/teams", headers=lead_key)).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"role": "team_lead"},
        {"role": "coordinator", "team": "North"},
        {"role": "team_lead", "team": "Atlantis"},
        {"role": "owner"},
        {"role": "admin", "name": "x" * 201},
    ],
)
async def test_bad_key_requests_are_422_and_create_nothing(
    client: httpx.AsyncClient, body: dict[str, object]
) -> None:
    await make_team(client.ctx, "North")  # type: ignore[attr-defined]
    response = await client.post(f"{API}/keys", json=body)
    assert response.status_code == 422, response.text
    assert len(await listed(client)) == 1


async def test_only_admins_may_touch_keys(make_client: MakeClient) -> None:
    client = await make_client()
    ctx = client.ctx  # type: ignore[attr-defined]
    admin = bearer(await new_key(ctx))
    team = await make_team(ctx, "North")
    coordinator = await new_key(ctx, "coordinator")
    lead = await new_key(ctx, "team_lead", team)
    before = (await client.get(f"{API}/keys", headers=admin)).json()["items"]
    for key in (coordinator, lead):
        headers = bearer(key)
        assert (await client.get(f"{API}/keys", headers=headers)).status_code == 403
        made = await client.post(f"{API}/keys", json={"role": "admin"}, headers=headers)
        assert made.status_code == 403
        for row in before:
            gone = await client.delete(f"{API}/keys/{row['id']}", headers=headers)
            assert gone.status_code == 403
    # No key at all: 401.
    assert (await client.get(f"{API}/keys")).status_code == 401
    assert (await client.post(f"{API}/keys", json={"role": "admin"})).status_code == 401
    assert (await client.delete(f"{API}/keys/1")).status_code == 401
    after = (await client.get(f"{API}/keys", headers=admin)).json()["items"]
    assert [(k["id"], k["revoked_at"]) for k in after] == [(k["id"], None) for k in before]


async def test_the_last_active_admin_key_cannot_be_revoked(client: httpx.AsyncClient) -> None:
    [mine] = (await listed(client)).values()
    refused = await client.delete(f"{API}/keys/{mine['id']}")
    assert refused.status_code == 409
    assert "last active admin key" in refused.json()["detail"]
    assert (await client.get(f"{API}/keys")).status_code == 200  # still works
    other = (await client.post(f"{API}/keys", json={"role": "admin"})).json()
    # With a second admin key, an admin may revoke their own...
    assert (await client.delete(f"{API}/keys/{mine['id']}")).status_code == 204
    assert (await client.get(f"{API}/keys")).status_code == 401
    # ...and the revoked one no longer counts.
    client.headers.update(bearer(other["key"]))
    assert (await client.delete(f"{API}/keys/{other['id']}")).status_code == 409
    assert (await client.get(f"{API}/keys")).status_code == 200


async def test_two_admins_revoking_each_other_at_once_leave_one_admin(
    client: httpx.AsyncClient,
) -> None:
    """The second revocation waits for the first (locked admin rows on PostgreSQL, the
    write lock on SQLite), then sees that its key is the last one."""
    ctx = client.ctx  # type: ignore[attr-defined]
    [first] = (await listed(client)).values()
    second = (await client.post(f"{API}/keys", json={"role": "admin"})).json()

    async def revoke_alone(key_id: int) -> None:
        async with ctx.sessions() as session:
            await revoke_key(session, key_id, ctx.clock())
            await session.commit()

    async with ctx.sessions() as session:
        await revoke_key(session, second["id"], ctx.clock())
        other = asyncio.create_task(revoke_alone(first["id"]))
        done, _ = await asyncio.wait([other], timeout=0.3)
        assert not done, "the second revocation did not wait for the first"
        await session.commit()
    with pytest.raises(LastAdminKey):
        await asyncio.wait_for(other, timeout=10)
    keys = await listed(client)
    assert keys[first["id"]]["revoked_at"] is None
    assert keys[second["id"]]["revoked_at"] is not None


async def test_keys_list_is_paginated(client: httpx.AsyncClient) -> None:
    for n in range(4):
        await client.post(f"{API}/keys", json={"role": "coordinator", "name": f"k{n}"})
    seen: list[int] = []
    cursor = None
    for _ in range(5):
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await client.get(f"{API}/keys", params=params)).json()
        seen += [k["id"] for k in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 5 and seen == sorted(set(seen))
    bad = await client.get(f"{API}/keys", params={"cursor": "nonsense"})
    assert bad.status_code == 422


async def test_last_used_is_written_at_most_once_a_minute(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    key = (await client.post(f"{API}/keys", json={"role": "coordinator"})).json()
    assert (await listed(client))[key["id"]]["last_used_at"] is None
    for seconds in (0, 30, 29):  # 15:00:00, then 15:00:30 and 15:00:59 change nothing
        clock.advance(seconds=seconds)
        assert (await client.get(f"{API}/teams", headers=bearer(key["key"]))).status_code == 200
        assert (await listed(client))[key["id"]]["last_used_at"] == "2026-03-04T15:00:00Z"
    clock.advance(seconds=1)  # a minute after the first use
    await client.get(f"{API}/teams", headers=bearer(key["key"]))
    assert (await listed(client))[key["id"]]["last_used_at"] == "2026-03-04T15:01:00Z"


@pytest.fixture
def cli_env(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RALLYPOINT_DATABASE_URL", database_url)
    monkeypatch.chdir(tmp_path)  # no stray .env


def cli_rows(out: str) -> dict[str, dict[str, str]]:
    header, *lines = out.splitlines()
    names = header.split("\t")
    assert names[:3] == ["id", "role", "team"]
    return {line.split("\t")[0]: dict(zip(names, line.split("\t"), strict=True)) for line in lines}


def test_cli_keys_create_list_and_revoke(cli_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "create", "--role", "admin", "--name", "ops  desk"]) == 0
    created = capsys.readouterr()
    assert KEY_LINE.fullmatch(created.out)  # the key alone on one line of stdout
    admin_key = created.out.strip()
    assert main(["keys", "create", "--role", "coordinator"]) == 0
    coordinator_key = capsys.readouterr().out.strip()

    assert main(["keys", "list"]) == 0
    out = capsys.readouterr().out
    for secret in (admin_key, coordinator_key, hash_key(admin_key), hash_key(coordinator_key)):
        assert secret not in out
    rows = cli_rows(out)
    assert rows["1"]["role"] == "admin" and rows["1"]["name"] == "ops desk"
    assert rows["1"]["prefix"] == admin_key[:8]
    assert rows["2"]["team"] == "-" and rows["2"]["revoked_at"] == "-"
    assert rows["2"]["last_used_at"] == "-"

    assert main(["keys", "revoke", "2"]) == 0
    assert "revoked key 2" in capsys.readouterr().err
    assert main(["keys", "list"]) == 0
    assert cli_rows(capsys.readouterr().out)["2"]["revoked_at"] != "-"
    assert main(["keys", "revoke", "2"]) == 0
    assert "already revoked" in capsys.readouterr().err

    assert main(["keys", "revoke", "99"]) == 1
    assert "no API key with id 99" in capsys.readouterr().err
    assert main(["keys", "revoke", "1"]) == 1
    assert "last active admin key" in capsys.readouterr().err
    assert main(["keys", "list"]) == 0
    assert cli_rows(capsys.readouterr().out)["1"]["revoked_at"] == "-"


async def test_a_key_revoked_by_the_cli_is_refused_at_once(
    client: httpx.AsyncClient, cli_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    key = (await client.post(f"{API}/keys", json={"role": "coordinator"})).json()
    assert (await client.get(f"{API}/teams", headers=bearer(key["key"]))).status_code == 200
    assert await asyncio.to_thread(main, ["keys", "revoke", str(key["id"])]) == 0
    assert (await client.get(f"{API}/teams", headers=bearer(key["key"]))).status_code == 401


async def test_cli_refuses_a_team_on_other_keys_and_a_lead_key_without_one(
    client: httpx.AsyncClient, cli_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """As POST /keys does (422): only a team_lead key has a team, and it must have one."""
    north = await make_team(client.ctx, "North")  # type: ignore[attr-defined]
    capsys.readouterr()
    for argv, says in [
        (["--role", "admin", "--team", "North"], "only a team_lead key has a team"),
        (["--role", "coordinator", "--team", "North"], "only a team_lead key has a team"),
        (["--role", "team_lead"], "a team_lead key needs --team"),
    ]:
        assert await asyncio.to_thread(main, ["keys", "create", *argv]) == 2, argv
        refused = capsys.readouterr()
        assert refused.out == "", argv
        [line] = refused.err.splitlines()
        assert line.startswith("error: ") and says in line, line
    assert len(await listed(client)) == 1  # the client's own key: nothing created

    assert (
        await asyncio.to_thread(main, ["keys", "create", "--role", "team_lead", "--team", "North"])
        == 0
    )
    assert KEY_LINE.fullmatch(capsys.readouterr().out)  # the key alone on one line of stdout
    made = [k for k in (await listed(client)).values() if k["role"] == "team_lead"]
    assert [k["team"] for k in made] == [{"id": north, "name": "North"}]
