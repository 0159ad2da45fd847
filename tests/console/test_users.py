"""Console users: `rallypoint users ...` and /api/v1/users (admin keys only)."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

from gateway.cli import main
from storage.models import User
from tests.conftest import bearer, new_key
from tests.gateway.seed import make_team

API = "/api/v1/users"
PASSWORD = "correct horse battery"


@pytest.fixture
def cli_env(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RALLYPOINT_DATABASE_URL", database_url)
    monkeypatch.chdir(tmp_path)  # no stray .env


def run(monkeypatch: pytest.MonkeyPatch, args: list[str], stdin: str = "") -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return main(args)


async def test_create_list_and_change_users(client: httpx.AsyncClient) -> None:
    team_id = await make_team(client.ctx, "North")  # type: ignore[attr-defined]
    made = await client.post(
        API,
        json={
            "email": "Ada@Example.org",
            "password": PASSWORD,
            "role": "team_lead",
            "team": "North",
            "name": "Ada",
        },
    )
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["email"] == "ada@example.org"
    assert body["team"] == {"id": team_id, "name": "North"}
    assert body["active"] is True
    assert "password" not in made.text and "argon2" not in made.text

    async with client.ctx.sessions() as session:  # type: ignore[attr-defined]
        row = (await session.exec(select(User))).one()
    assert row.password_hash.startswith("$argon2id$")
    assert PASSWORD not in row.password_hash

    duplicate = await client.post(
        API, json={"email": "ADA@example.org", "password": PASSWORD, "role": "admin"}
    )
    assert duplicate.status_code == 409

    listed = (await client.get(API)).json()["items"]
    assert [u["email"] for u in listed] == ["ada@example.org"]
    assert "password" not in str(listed)

    changed = await client.patch(
        f"{API}/{body['id']}", json={"role": "coordinator", "name": "Ada L."}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["team"] is None and changed.json()["name"] == "Ada L."
    off = await client.patch(f"{API}/{body['id']}", json={"active": False})
    assert off.json()["active"] is False
    assert (await client.patch(f"{API}/999", json={"active": False})).status_code == 404


async def test_bad_input_is_refused_without_echoing_the_password(
    client: httpx.AsyncClient,
) -> None:
    short = await client.post(
        API, json={"email": "bo@example.org", "password": "short pw 11", "role": "admin"}
    )
    assert short.status_code == 422
    assert "short pw 11" not in short.text
    missing_role = await client.post(API, json={"email": "bo@example.org", "password": PASSWORD})
    assert missing_role.status_code == 422 and PASSWORD not in missing_role.text
    no_team = await client.post(
        API, json={"email": "bo@example.org", "password": PASSWORD, "role": "team_lead"}
    )
    assert no_team.status_code == 422
    unknown_team = await client.post(
        API,
        json={"email": "bo@example.org", "password": PASSWORD, "role": "team_lead", "team": "X"},
    )
    assert unknown_team.status_code == 422
    bad_email = await client.post(
        API, json={"email": "not-an-email", "password": PASSWORD, "role": "admin"}
    )
    assert bad_email.status_code == 422
    assert (await client.get(API)).json()["items"] == []
    made = await client.post(
        API, json={"email": "bo@example.org", "password": PASSWORD, "role": "admin"}
    )
    short_change = await client.patch(f"{API}/{made.json()['id']}", json={"password": "x" * 11})
    assert short_change.status_code == 422 and "x" * 11 not in short_change.text


async def test_only_admin_keys_manage_users(client: httpx.AsyncClient) -> None:
    key = await new_key(client.ctx, "coordinator")  # type: ignore[attr-defined]
    assert (await client.get(API, headers=bearer(key))).status_code == 403
    posted = await client.post(
        API,
        headers=bearer(key),
        json={"email": "c@example.org", "password": PASSWORD, "role": "admin"},
    )
    assert posted.status_code == 403
    assert (await client.get(API, headers={"Authorization": ""})).status_code == 401


def test_cli_users_create_list_deactivate(
    cli_env: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        run(
            monkeypatch,
            ["users", "create", "--email", "Lee@Example.org", "--role", "admin", "--name", "Lee"],
            PASSWORD + "\n",
        )
        == 0
    )
    assert "created user 1" in capsys.readouterr().err
    # Too short: exit 2, nothing created.
    assert (
        run(
            monkeypatch,
            ["users", "create", "--email", "kim@example.org", "--role", "coordinator"],
            "elevenchars\n",
        )
        == 2
    )
    assert "at least 12" in capsys.readouterr().err
    assert (
        run(
            monkeypatch,
            ["users", "create", "--email", "kim@example.org", "--role", "team_lead"],
            PASSWORD + "\n",
        )
        == 2
    )
    assert "needs a team" in capsys.readouterr().err
    assert (
        run(
            monkeypatch,
            ["users", "create", "--email", "LEE@example.org", "--role", "admin"],
            PASSWORD + "\n",
        )
        == 2
    )
    assert "exists already" in capsys.readouterr().err

    assert run(monkeypatch, ["users", "list"]) == 0
    out = capsys.readouterr().out
    header, *lines = out.splitlines()
    assert header.split("\t")[:3] == ["id", "email", "role"]
    assert len(lines) == 1 and lines[0].split("\t")[1:3] == ["lee@example.org", "admin"]
    assert "argon2" not in out and PASSWORD not in out

    assert run(monkeypatch, ["users", "deactivate", "1"]) == 0
    assert "deactivated user 1" in capsys.readouterr().err
    assert run(monkeypatch, ["users", "list"]) == 0
    assert capsys.readouterr().out.splitlines()[1].split("\t")[5] == "no"
    assert run(monkeypatch, ["users", "deactivate", "7"]) == 1
