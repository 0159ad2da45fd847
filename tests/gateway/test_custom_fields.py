"""Custom fields over HTTP: defining them, typed values on supporters, audiences that filter
by them."""

from __future__ import annotations

import httpx

from storage.models import SupporterFieldValue
from tests.conftest import bearer, new_key
from tests.gateway.seed import count, messages_of
from tests.routing.fake_adapter import FakeAdapter

API = "/api/v1"


async def define(client: httpx.AsyncClient, name: str, type_: str, **extra: object) -> None:
    answer = await client.post(f"{API}/fields", json={"name": name, "type": type_, **extra})
    assert answer.status_code == 201, answer.text


async def define_all(client: httpx.AsyncClient) -> None:
    await define(client, "county", "text")
    await define(client, "doors", "number")
    await define(client, "joined", "date")
    await define(client, "shirt", "choice", choices=["S", "M", "L"])


async def test_fields_are_defined_listed_and_deleted(client: httpx.AsyncClient) -> None:
    await define_all(client)
    listed = (await client.get(f"{API}/fields")).json()["items"]
    assert [(f["name"], f["type"]) for f in listed] == [
        ("county", "text"),
        ("doors", "number"),
        ("joined", "date"),
        ("shirt", "choice"),
    ]
    assert listed[3]["choices"] == ["S", "M", "L"]
    again = await client.post(f"{API}/fields", json={"name": "county", "type": "text"})
    assert again.status_code == 409
    bad = await client.post(f"{API}/fields", json={"name": "Home County", "type": "text"})
    assert bad.status_code == 422 and "name" in bad.text
    no_choices = await client.post(f"{API}/fields", json={"name": "size", "type": "choice"})
    assert no_choices.status_code == 422 and "choices" in no_choices.text
    bad_type = await client.post(f"{API}/fields", json={"name": "x", "type": "colour"})
    assert bad_type.status_code == 422
    assert (await client.delete(f"{API}/fields/county")).status_code == 204
    assert (await client.delete(f"{API}/fields/county")).status_code == 404


async def test_team_leads_read_fields_but_do_not_define_them(client: httpx.AsyncClient) -> None:
    ctx = client.ctx  # type: ignore[attr-defined]
    team = (await client.post(f"{API}/teams", json={"name": "North"})).json()["id"]
    lead = bearer(await new_key(ctx, "team_lead", team))
    refused = await client.post(
        f"{API}/fields", json={"name": "county", "type": "text"}, headers=lead
    )
    assert refused.status_code == 403
    assert (await client.get(f"{API}/fields", headers=lead)).status_code == 200


async def test_supporter_values_are_typed_and_checked(client: httpx.AsyncClient) -> None:
    await define_all(client)
    created = await client.post(
        f"{API}/supporters",
        json={
            "name": "Amina",
            "addresses": [{"channel": "sms", "address": "+14155550100"}],
            "fields": {
                "county": " Kisumu ",
                "doors": "1,200.50",
                "joined": "2026-01-05",
                "shirt": "m",
            },
        },
    )
    assert created.status_code == 201, created.text
    supporter = created.json()
    assert supporter["fields"] == {
        "county": "Kisumu",
        "doors": "1200.5",
        "joined": "2026-01-05",
        "shirt": "M",
    }
    sid = supporter["id"]
    patched = await client.patch(
        f"{API}/supporters/{sid}", json={"fields": {"doors": 30, "county": None}}
    )
    assert patched.status_code == 200
    assert patched.json()["fields"] == {"doors": "30", "joined": "2026-01-05", "shirt": "M"}
    assert (await client.get(f"{API}/supporters/{sid}")).json()["fields"]["doors"] == "30"

    for fields, named in (
        ({"doors": "many"}, "doors"),
        ({"joined": "5 Jan"}, "joined"),
        ({"shirt": "XXL"}, "shirt"),
        ({"hometown": "Kisumu"}, "hometown"),
    ):
        refused = await client.patch(f"{API}/supporters/{sid}", json={"fields": fields})
        assert refused.status_code == 422, fields
        error = refused.json()["errors"][0]
        assert error["field"] == f"body.fields.{named}", error
        assert "XXL" not in refused.text and "many" not in refused.text

    # A bad field on create stores nothing at all.
    refused = await client.post(
        f"{API}/supporters",
        json={
            "name": "Ben",
            "addresses": [{"channel": "sms", "address": "+14155550101"}],
            "fields": {"county": "Kisumu", "doors": "lots"},
        },
    )
    assert refused.status_code == 422
    assert len((await client.get(f"{API}/supporters")).json()["items"]) == 1
    # Deleting a field deletes its values.
    await client.delete(f"{API}/fields/doors")
    assert (await client.get(f"{API}/supporters/{sid}")).json()["fields"] == {
        "joined": "2026-01-05",
        "shirt": "M",
    }
    assert await count(client.ctx, SupporterFieldValue) == 2  # type: ignore[attr-defined]


async def test_audiences_filter_by_fields(client: httpx.AsyncClient) -> None:
    ctx = client.ctx  # type: ignore[attr-defined]
    ctx.registry.add(FakeAdapter(channels=("sms",)))
    await define_all(client)
    ids = {}
    for name, phone, fields in (
        ("Amina", "+14155550100", {"county": "Kisumu", "shirt": "S"}),
        ("Ben", "+14155550101", {"county": "Nairobi", "shirt": "S"}),
        ("Chidi", "+14155550102", {"county": "Kisumu", "shirt": "L"}),
        ("Dana", "+14155550103", {}),
    ):
        answer = await client.post(
            f"{API}/supporters",
            json={
                "name": name,
                "addresses": [{"channel": "sms", "address": phone}],
                "fields": fields,
            },
        )
        ids[name] = answer.json()["id"]
    sent = await client.post(
        f"{API}/announcements",
        json={"body": "Kisumu meet-up", "audience": {"fields": {"county": "Kisumu"}}},
    )
    assert sent.status_code == 202, sent.text
    assert sent.json()["audience"]["fields"] == {"county": ["Kisumu"]}
    assert {m.supporter_id for m in await messages_of(ctx, sent.json()["id"])} == {
        ids["Amina"],
        ids["Chidi"],
    }
    # Across fields all must match; a choice is matched in its own spelling.
    preview = await client.post(
        f"{API}/announcements?dry_run=true",
        json={"body": "x", "audience": {"fields": {"county": ["Kisumu", "Nairobi"], "shirt": "s"}}},
    )
    assert preview.json()["recipients"] == 2
    for fields, named in (({"hometown": "x"}, "hometown"), ({"shirt": "XXL"}, "shirt")):
        refused = await client.post(
            f"{API}/announcements", json={"body": "x", "audience": {"fields": fields}}
        )
        assert refused.status_code == 422
        assert refused.json()["errors"][0]["field"] == f"body.audience.fields.{named}"


async def test_a_text_value_that_looks_like_an_index_reads_back(client: httpx.AsyncClient) -> None:
    """Without keys a value is stored as written, so one that starts like a blind index
    ("b1:") is still the value: reading it back must not call it a lost seal."""
    await define(client, "county", "text")
    created = await client.post(
        f"{API}/supporters",
        json={
            "name": "Amina",
            "addresses": [{"channel": "sms", "address": "+14155550100"}],
            "fields": {"county": "b1:abc"},
        },
    )
    assert created.status_code == 201, created.text
    read = await client.get(f"{API}/supporters/{created.json()['id']}")
    assert read.status_code == 200, read.text
    assert read.json()["fields"] == {"county": "b1:abc"}
