"""Merge variables: `{first_name}`, `{name}`, `{fields.X}` with fallbacks, rendered per
recipient at fan-out, checked at create time (an unknown one → 422 naming it), shown at
their longest in the preview."""

from __future__ import annotations

import httpx
import pytest

from routing.texts.variables import TemplateError, check, parse
from tests.gateway.seed import messages_of
from tests.routing.fake_adapter import FakeAdapter

API = "/api/v1"


def test_parse_render_and_escape() -> None:
    template = parse("Hi {first_name|friend}, {{county}} is {fields.county|your county}}")
    assert template.render("Amina Wanjiru", {"county": "Kisumu"}) == (
        "Hi Amina, {county} is Kisumu}"
    )
    assert template.render("", {}) == "Hi friend, {county} is your county}"
    assert parse("{name}!").render("  Amina Wanjiru ", {}) == "Amina Wanjiru!"
    assert not parse("no variables {{here}}").has_variables
    assert parse("no variables {{here}}").literal() == "no variables {here}"
    for bad in ("an open { brace", "empty {} one"):
        with pytest.raises(TemplateError):
            parse(bad)
    with pytest.raises(TemplateError, match=r"\{fields.hometown\}"):
        check("from {fields.hometown}", ["county"])
    with pytest.raises(TemplateError, match=r"\{firstname\}"):
        check("Hi {firstname}", ["county"])
    assert check("{fields.county}", ["county"]).field_names == {"county"}


async def people(client: httpx.AsyncClient) -> dict[str, int]:
    client.ctx.registry.add(FakeAdapter(channels=("sms",)))  # type: ignore[attr-defined]
    await client.post(f"{API}/fields", json={"name": "county", "type": "text"})
    ids = {}
    for name, phone, fields in (
        ("Amina Wanjiru", "+14155550100", {"county": "Kisumu"}),
        ("", "+14155550101", {}),
        ("Ben", "+14155550102", {"county": "Nairobi City County, Kenya " * 6}),
    ):
        answer = await client.post(
            f"{API}/supporters",
            json={
                "name": name or "?",
                "addresses": [{"channel": "sms", "address": phone}],
                "fields": fields,
            },
        )
        assert answer.status_code == 201, answer.text
        ids[name or "?"] = answer.json()["id"]
    return ids


async def test_an_announcement_is_rendered_for_each_recipient(client: httpx.AsyncClient) -> None:
    ids = await people(client)
    body = "Hi {first_name|friend}, meet in {fields.county|your county} {{today}}"
    sent = await client.post(f"{API}/announcements", json={"body": body, "audience": {"all": True}})
    assert sent.status_code == 202, sent.text
    assert sent.json()["body"] == body  # stored as written
    messages = {m.supporter_id: m for m in await messages_of(client.ctx, sent.json()["id"])}  # type: ignore[attr-defined]
    assert messages[ids["Amina Wanjiru"]].body == "Hi Amina, meet in Kisumu {today}"
    assert messages[ids["?"]].body == "Hi ?, meet in your county {today}"
    ben = messages[ids["Ben"]]
    assert ben.body.startswith("Hi Ben, meet in Nairobi City County") and ben.segments == 2
    assert messages[ids["Amina Wanjiru"]].segments == 1


async def test_a_plain_body_keeps_its_escaped_braces_single(client: httpx.AsyncClient) -> None:
    await people(client)
    sent = await client.post(
        f"{API}/announcements", json={"body": "Code {{A1}}", "audience": {"all": True}}
    )
    assert {m.body for m in await messages_of(client.ctx, sent.json()["id"])} == {"Code {A1}"}  # type: ignore[attr-defined]


async def test_the_preview_shows_the_longest_variant(client: httpx.AsyncClient) -> None:
    await people(client)
    preview = await client.post(
        f"{API}/announcements?dry_run=true",
        json={"body": "Hi {first_name}, see you in {fields.county}", "audience": {"all": True}},
    )
    assert preview.status_code == 200, preview.text
    data = preview.json()
    assert data["longest_variant"].startswith("Hi Ben, see you in Nairobi City County")
    assert data["sms_segments"] == {"per_message": 2, "total": 6}


async def test_unknown_variables_are_refused_where_they_are_written(
    client: httpx.AsyncClient,
) -> None:
    await people(client)
    team = (await client.post(f"{API}/teams", json={"name": "North"})).json()["id"]
    cases = [
        (
            f"{API}/announcements",
            {"body": "From {fields.hometown}", "audience": {"all": True}},
            ["body", "body"],
        ),
        (
            f"{API}/announcements?dry_run=true",
            {"body": "Hi {frist_name}", "audience": {"all": True}},
            ["body", "body"],
        ),
        (
            f"{API}/polls",
            {
                "question": "Coming, {fields.x}?",
                "options": ["Yes", "No"],
                "audience": {"all": True},
            },
            ["body", "question"],
        ),
        (
            f"{API}/teams/{team}/checkins",
            {"weekday": 2, "local_time": "18:00", "prompt": "How was {fields.week}?"},
            ["body", "prompt"],
        ),
        (f"{API}/saved-replies", {"title": "Hi", "body": "Hi {nick|there}"}, None),
    ]
    for url, body, loc in cases:
        answer = await client.post(url, json=body)
        assert answer.status_code == 422, (url, answer.text)
        assert "unknown variable {" in answer.text, answer.text
        if loc is not None:
            assert answer.json()["errors"][0]["field"] == ".".join(loc)
    listed = (await client.get(f"{API}/announcements")).json()["items"]
    assert listed == []
    ok = await client.post(
        f"{API}/saved-replies", json={"title": "Hello", "body": "Hi {first_name|there}"}
    )
    assert ok.status_code == 201, ok.text
