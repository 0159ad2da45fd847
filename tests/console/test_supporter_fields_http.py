"""Custom fields in the console (plain HTTP): the profile shows them, the edit form edits
them by type, a bad value re-renders the form naming the field, escaped."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx

from tests.conftest import bearer, new_key
from tests.console.test_console_http import csrf_of
from tests.console.test_people_http import add_supporter, signed_in

Factory = Callable[..., Awaitable[httpx.AsyncClient]]


async def test_the_edit_form_sets_and_clears_custom_fields(make_client: Factory) -> None:
    client = await signed_in(make_client)
    key = bearer(await new_key(client.ctx))  # type: ignore[attr-defined]
    for field in (
        {"name": "county", "type": "text"},
        {"name": "doors", "type": "number"},
        {"name": "shirt", "type": "choice", "choices": ["S", "M"]},
    ):
        assert (await client.post("/api/v1/fields", json=field, headers=key)).status_code == 201
    sid = await add_supporter(client, "Ann")
    page = await client.get(f"/console/supporters/{sid}/edit")
    assert 'name="field.county"' in page.text and "<option>M</option>" in page.text
    form = {"name": "Ann", "csrf_token": csrf_of(page.text)}
    bad = await client.post(
        f"/console/supporters/{sid}/edit",
        data={**form, "field.county": "<b>Kisumu</b>", "field.doors": "lots"},
    )
    assert bad.status_code == 422 and "doors: not a number" in bad.text
    assert 'value="&lt;b&gt;Kisumu&lt;/b&gt;"' in bad.text
    ok = await client.post(
        f"/console/supporters/{sid}/edit",
        data={**form, "field.county": "<b>Kisumu</b>", "field.doors": "12", "field.shirt": "M"},
    )
    assert ok.status_code == 303
    stored = (await client.get(f"/api/v1/supporters/{sid}", headers=key)).json()["fields"]
    assert stored == {"county": "<b>Kisumu</b>", "doors": "12", "shirt": "M"}
    profile = await client.get(f"/console/supporters/{sid}")
    assert "Custom fields" in profile.text and "&lt;b&gt;Kisumu&lt;/b&gt;" in profile.text
    assert "<b>Kisumu</b>" not in profile.text
    page = await client.get(f"/console/supporters/{sid}/edit")
    cleared = await client.post(
        f"/console/supporters/{sid}/edit",
        data={"name": "Ann", "csrf_token": csrf_of(page.text), "field.doors": "12"},
    )
    assert cleared.status_code == 303
    stored = (await client.get(f"/api/v1/supporters/{sid}", headers=key)).json()["fields"]
    assert stored == {"doors": "12"}


async def test_the_import_page_runs_a_dry_run_of_a_crm_export(make_client: Factory) -> None:
    client = await signed_in(make_client)
    token = csrf_of((await client.get("/console/supporters/import")).text)
    data = b"first_name,last_name,can2_phone,can2_sms_status,zip_code\n"
    data += b"Ada,Lovelace,+14155550101,unsubscribed,94110\nAda,L,+14155550101,,94110\n"
    done = await client.post(
        "/console/supporters/import",
        data={"csrf_token": token, "dry_run": "on", "create_fields": "on"},
        files={"file": ("an.csv", data)},
    )
    assert done.status_code == 200
    assert "Dry run, nothing was saved. an.csv: 1 created, 0 updated, 1 rejected." in done.text
    assert "1 of them repeat an earlier row. 1 opt-outs honoured." in done.text
    assert "Custom fields created: zip_code." in done.text
    assert "duplicate of row 1: the same phone" in done.text
    key = bearer(await new_key(client.ctx))  # type: ignore[attr-defined]
    assert (await client.get("/api/v1/supporters", headers=key)).json()["items"] == []
