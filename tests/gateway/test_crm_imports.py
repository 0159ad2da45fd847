"""Imports of CRM exports (Action Network, NationBuilder, Mobilize, EveryAction/VAN; the
files in tests/gateway/testdata are shaped like each one's): their columns map to ours, the
rest to custom fields, their opt-outs are honoured; a file's own duplicates are reported;
dry runs, unreadable files, `--partial`, `--rejects` and progress."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import select

from gateway.cli import main
from storage.models import ConsentEvent, Supporter, SupporterAddress
from tests.conftest import bearer, new_key
from tests.gateway.seed import count

API = "/api/v1"
TESTDATA = Path(__file__).parent / "testdata"


async def upload(client: httpx.AsyncClient, data: bytes, **params: Any) -> httpx.Response:
    return await client.post(
        f"{API}/supporters/import",
        params={k: str(v).lower() for k, v in params.items()},
        files={"file": ("people.csv", data, "text/csv")},
    )


async def people(client: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    items = (await client.get(f"{API}/supporters", params={"limit": 200})).json()["items"]
    return {p["name"]: p for p in items}


def phone_of(person: dict[str, Any]) -> dict[str, Any]:
    return next(a for a in person["addresses"] if a["channel"] == "sms")


def email_of(person: dict[str, Any]) -> dict[str, Any]:
    return next(a for a in person["addresses"] if a["channel"] == "email")


async def test_action_network_export(client: httpx.AsyncClient) -> None:
    await client.post(f"{API}/fields", json={"name": "zip_code", "type": "text"})
    answer = await upload(client, (TESTDATA / "action_network.csv").read_bytes())
    assert answer.status_code == 200, answer.text
    summary = answer.json()
    assert (summary["created"], summary["updated"], summary["rejected"]) == (4, 0, [])
    assert summary["unmatched_columns"] == ["uuid", "can2_user_tags", "volunteer_shift"]
    assert summary["opted_out"] == 1
    found = await people(client)
    assert set(found) == {"Amina Wanjiru", "Ben Okafor", "Chidi", "Dana Reyes"}
    assert phone_of(found["Amina Wanjiru"])["address"] == "+14155550101"
    assert found["Amina Wanjiru"]["fields"] == {"zip_code": "94110"}  # a field that exists
    # can2_sms_status=unsubscribed: Ben's number is opted out, his email is not.
    assert phone_of(found["Ben Okafor"])["opted_out"] is True
    assert email_of(found["Ben Okafor"])["opted_out"] is False
    assert not found["Ben Okafor"]["opted_out"]
    assert phone_of(found["Dana Reyes"])["opted_out"] is False  # bouncing is no opt-out


async def test_nationbuilder_export_with_new_fields(client: httpx.AsyncClient) -> None:
    answer = await upload(client, (TESTDATA / "nationbuilder.csv").read_bytes(), create_fields=True)
    assert answer.status_code == 200, answer.text
    summary = answer.json()
    assert summary["rejected"] == [
        {"row": 3, "reason": "no address: give at least one of phone, whatsapp, telegram, email"}
    ]
    assert summary["created_fields"] == ["nationbuilder_id", "primary_zip", "support_level"]
    fields = (await client.get(f"{API}/fields")).json()["items"]
    assert {f["name"]: f["type"] for f in fields} == {
        "nationbuilder_id": "text",
        "primary_zip": "text",
        "support_level": "text",
    }
    found = await people(client)
    esi, femi = found["Esi Ama Mensah"], found["Femi Adeyemi"]
    assert esi["tags"] == ["canvasser", "phone bank"]
    # The mobile number wins over the other phone column.
    assert phone_of(femi)["address"] == "+14155550112"
    assert esi["fields"] == {
        "nationbuilder_id": "101",
        "primary_zip": "94110",
        "support_level": "1",
    }
    # mobile_opt_in / email_opt_in false: both of Femi's addresses are opted out.
    assert phone_of(femi)["opted_out"] and email_of(femi)["opted_out"]
    assert not phone_of(esi)["opted_out"] and not email_of(esi)["opted_out"]


async def test_mobilize_export_reports_its_duplicates(client: httpx.AsyncClient) -> None:
    data = (TESTDATA / "mobilize.csv").read_bytes()
    answer = await upload(client, data)
    summary = answer.json()
    assert (summary["created"], summary["updated"], summary["duplicates"]) == (2, 0, 1)
    assert summary["rejected"] == [{"row": 3, "reason": "duplicate of row 1: the same phone"}]
    assert summary["unmatched_columns"] == ["zip", "event_name", "timeslot_start"]
    assert phone_of((await people(client))["Hana Kim"])["address"] == "+14155550121"
    merged = (await upload(client, data, merge_duplicates=True)).json()
    assert (merged["created"], merged["updated"], merged["rejected"]) == (0, 3, [])
    assert await count(client.ctx, Supporter) == 2  # type: ignore[attr-defined]


async def test_van_export(client: httpx.AsyncClient) -> None:
    summary = (await upload(client, (TESTDATA / "van.csv").read_bytes(), create_fields=True)).json()
    assert (summary["created"], summary["rejected"]) == (3, [])
    found = await people(client)
    assert set(found) == {"Jo Baptiste", "Kofi Boateng", "Lena"}
    assert phone_of(found["Jo Baptiste"])["address"] == "+14155550131"
    assert found["Jo Baptiste"]["fields"]["vanid"] == "100234"
    assert found["Lena"]["fields"] == {"precinct": "SF-0041", "vanid": "100236"}


async def test_a_dry_run_writes_nothing(client: httpx.AsyncClient) -> None:
    answer = await upload(
        client, (TESTDATA / "nationbuilder.csv").read_bytes(), dry_run=True, create_fields=True
    )
    summary = answer.json()
    assert summary["dry_run"] is True and summary["created"] == 2 and summary["opted_out"] == 1
    assert summary["created_fields"] == ["nationbuilder_id", "primary_zip", "support_level"]
    ctx = client.ctx  # type: ignore[attr-defined]
    assert await count(ctx, Supporter) == 0 and await count(ctx, SupporterAddress) == 0
    assert (await client.get(f"{API}/fields")).json()["items"] == []


async def test_an_unreadable_row_stops_the_import_unless_partial(
    client: httpx.AsyncClient,
) -> None:
    good = b"name,phone\nAmina,+14155550101\n"
    latin1 = "Zoë,+14155550102\n".encode("latin-1")
    data = good + latin1 + b"Ben,+14155550103\n"
    refused = await upload(client, data)
    assert refused.status_code == 422
    assert "row 2: not UTF-8" in refused.json()["detail"] and "nothing was imported" in refused.text
    assert await count(client.ctx, Supporter) == 0  # type: ignore[attr-defined]
    partial = (await upload(client, data, partial=True)).json()
    assert partial["created"] == 2 and [r["row"] for r in partial["rejected"]] == [2]


async def test_a_wrong_delimiter_is_named(client: httpx.AsyncClient) -> None:
    data = b"name;phone\nAmina;+14155550101\nBen;+14155550102;x,y;z\n"
    assert (await upload(client, b"name;phone\nAmina;+14155550101\n")).json()["created"] == 1
    refused = await upload(client, data)
    assert refused.status_code == 422
    assert "row 2: 4 cells but the header has 2 columns" in refused.json()["detail"]
    assert "semicolon" in refused.json()["detail"]


async def test_a_row_with_a_bad_field_value_is_rejected_naming_it(
    client: httpx.AsyncClient,
) -> None:
    await client.post(f"{API}/fields", json={"name": "doors", "type": "number"})
    data = b"name,phone,doors\nAmina,+14155550101,12\nBen,+14155550102,lots\n"
    summary = (await upload(client, data)).json()
    assert summary["created"] == 1
    assert summary["rejected"] == [{"row": 2, "reason": "doors: not a number"}]


async def test_our_opted_out_column_is_honoured_never_reversed(client: httpx.AsyncClient) -> None:
    data = b"name,phone,opted_out\nAmina,+14155550101,true\nBen,+14155550102,false\n"
    summary = (await upload(client, data)).json()
    assert summary["opted_out"] == 1
    found = await people(client)
    assert found["Amina"]["opted_out"] and not found["Ben"]["opted_out"]
    await upload(client, b"name,phone,opted_out\nAmina,+14155550101,false\n")
    assert (await people(client))["Amina"]["opted_out"]
    async with client.ctx.sessions() as session:  # type: ignore[attr-defined]
        reasons = (await session.exec(select(ConsentEvent.reason))).all()
    assert reasons == ["import"]


async def test_the_export_has_last_inbound_at_and_custom_fields(client: httpx.AsyncClient) -> None:
    await client.post(f"{API}/fields", json={"name": "county", "type": "text"})
    await client.post(
        f"{API}/supporters",
        json={
            "name": "Amina",
            "addresses": [{"channel": "sms", "address": "+14155550101"}],
            "fields": {"county": "=Kisumu"},
        },
    )
    export = await client.get(f"{API}/supporters/export")
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert list(rows[0])[-4:] == ["opted_out", "data_saver", "last_inbound_at", "county"]
    assert rows[0]["county"] == "'=Kisumu" and rows[0]["last_inbound_at"] == ""
    again = (await upload(client, export.content)).json()
    assert (again["updated"], again["unmatched_columns"]) == (1, [])
    assert (await people(client))["Amina"]["fields"] == {"county": "=Kisumu"}


async def test_cli_dry_run_rejects_file_and_progress(
    client: httpx.AsyncClient,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    lines = ["name,phone"] + [f"P{i},+1415555{i:04d}" for i in range(1, 1201)]
    lines += ["=Evil,+14155550001", "Nobody,"]
    path = tmp_path / "people.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    rejects = tmp_path / "rejects.csv"
    monkeypatch.setenv("RALLYPOINT_DATABASE_URL", database_url)
    monkeypatch.setenv("RALLYPOINT_DEFAULT_REGION", "US")
    monkeypatch.chdir(tmp_path)
    args = ["import", str(path), "--dry-run", "--rejects", str(rejects)]
    assert await asyncio.to_thread(main, args) == 0
    out = capsys.readouterr()
    summary = json.loads(out.out)
    assert summary["created"] == 1200 and summary["dry_run"] is True
    assert "1000 rows read" in out.err and "1202 rows read" in out.err
    assert await count(client.ctx, Supporter) == 0  # type: ignore[attr-defined]
    written = list(csv.reader(rejects.open(encoding="utf-8")))
    assert written == [
        ["row", "reason", "name", "phone"],
        ["1201", "duplicate of row 1: the same phone", "'=Evil", "+14155550001"],
        ["1202", "no address: give at least one of phone, whatsapp, telegram, email", "Nobody", ""],
    ]
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"name,phone\nZo\xeb,+14155550101\n")
    assert await asyncio.to_thread(main, ["import", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: row 1: not UTF-8") and err.count("\n") == 1


async def test_a_team_lead_cannot_create_fields_by_import(client: httpx.AsyncClient) -> None:
    ctx = client.ctx  # type: ignore[attr-defined]
    team = (await client.post(f"{API}/teams", json={"name": "North"})).json()["id"]
    lead = bearer(await new_key(ctx, "team_lead", team))
    answer = await client.post(
        f"{API}/supporters/import",
        params={"create_fields": "true"},
        files={"file": ("a.csv", b"name,phone,county\nAda,+14155550101,Kisumu\n", "text/csv")},
        headers=lead,
    )
    assert answer.status_code == 422 and "custom fields" in answer.json()["detail"]
    assert await count(ctx, Supporter) == 0
