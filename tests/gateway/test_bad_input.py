"""What fuzzing the REST API found answering 500, each now a clear 4xx: ids beyond what a
row id can be, team references in digits that are not ASCII, an empty Idempotency-Key,
forged cursors. Each is also checked to leave the API working for the next request."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from storage.models import MAX_ID, Announcement
from tests.gateway.seed import count, make_team

API = "/api/v1"
HUGE = "9223372036854775808"  # 2**63: beyond 64 bits
IDS = [HUGE, str(MAX_ID + 1)]


@pytest.mark.parametrize("big", IDS)
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/conversations/{}/read"),
        ("GET", "/conversations/{}/messages"),
        ("GET", "/supporters/{}"),
        ("PATCH", "/supporters/{}"),
        ("DELETE", "/supporters/{}"),
        ("GET", "/supporters/{}/consent"),
        ("POST", "/supporters/{}/telegram-link"),
        ("POST", "/supporters/{}/messages"),
        ("GET", "/messages/{}"),
        ("GET", "/messages/{}/attachments/0"),
        ("GET", "/announcements/{}"),
        ("POST", "/announcements/{}/cancel"),
        ("GET", "/polls/{}"),
        ("POST", "/polls/{}/close"),
        ("GET", "/checkins/{}"),
        ("DELETE", "/checkins/{}"),
        ("DELETE", "/keys/{}"),
    ],
)
async def test_ids_beyond_a_row_id_are_422(
    client: httpx.AsyncClient, method: str, path: str, big: str
) -> None:
    body = {"body": "hi"} if method in ("POST", "PATCH") else None
    answer = await client.request(method, API + path.format(big), json=body)
    assert answer.status_code == 422, answer.text
    assert "detail" in answer.json()


async def test_the_largest_row_id_is_a_404(client: httpx.AsyncClient) -> None:
    answer = await client.get(f"{API}/supporters/{MAX_ID}")
    assert answer.status_code == 404


@pytest.mark.parametrize("big", [99999999999999999999, HUGE, MAX_ID + 1])
async def test_team_ids_beyond_a_row_id_name_no_team(
    client: httpx.AsyncClient, big: object
) -> None:
    created = await client.post(
        f"{API}/supporters", json={"name": "Ada", "teams": [big], "addresses": []}
    )
    assert created.status_code == 422, created.text
    assert created.json()["errors"][0]["field"].endswith("teams.0")
    announced = await client.post(
        f"{API}/announcements", json={"body": "hi", "audience": {"teams": [big]}}
    )
    assert announced.status_code == 422, announced.text
    key = await client.post(f"{API}/keys", json={"role": "team_lead", "team": big})
    assert key.status_code == 422, key.text
    for path in (f"/teams/{big}", f"/teams/{big}/stats"):
        assert (await client.get(API + path)).status_code == 404
    assert (await client.post(f"{API}/teams/{big}/checkins", json={})).status_code == 422


@pytest.mark.parametrize("ref", ["²", "٣", "①", "1²"])
async def test_team_references_in_other_digits_are_names(
    client: httpx.AsyncClient, ref: str
) -> None:
    for path in ("/supporters", "/conversations", "/checkins", "/checkins/due"):
        answer = await client.get(API + path, params={"team": ref})
        assert answer.status_code == 422, (path, answer.text)
        assert answer.json()["errors"][0]["field"] == "query.team"
    assert (await client.get(f"{API}/teams/{ref}")).status_code == 404
    assert (await client.get(f"{API}/teams/{ref}/stats")).status_code == 404


async def test_a_team_reference_by_id_or_name_still_works(client: httpx.AsyncClient) -> None:
    team_id = await make_team(client.ctx, "North")  # type: ignore[attr-defined]
    for ref in (str(team_id), f" {team_id} ", "North"):
        answer = await client.get(f"{API}/teams/{ref.strip()}")
        assert answer.status_code == 200 and answer.json()["id"] == team_id
        listed = await client.get(f"{API}/supporters", params={"team": ref})
        assert listed.status_code == 200


@pytest.mark.parametrize("path", ["/announcements", "/polls"])
async def test_an_empty_idempotency_key_is_refused_and_breaks_nothing(
    client: httpx.AsyncClient, path: str
) -> None:
    ctx = client.ctx  # type: ignore[attr-defined]
    body = (
        {"question": "Saturday?", "options": ["yes", "no"], "audience": {"all": True}}
        if path == "/polls"
        else {"body": "Rally at noon", "audience": {"all": True}}
    )
    for _ in range(2):
        empty = await client.post(API + path, json=body, headers={"Idempotency-Key": ""})
        assert empty.status_code == 422, empty.text
        assert empty.json()["errors"][0]["field"] == "header.Idempotency-Key"
    assert await count(ctx, Announcement) == 0
    for key in ("a", "b"):
        keyed = await client.post(API + path, json=body, headers={"Idempotency-Key": key})
        assert keyed.status_code == 202, keyed.text
        again = await client.post(API + path, json=body, headers={"Idempotency-Key": key})
        assert again.status_code == 200 and again.json()["id"] == keyed.json()["id"]
    assert (await client.post(API + path, json=body)).status_code == 202


def _cursor(values: list[object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        _cursor([10**30]),
        _cursor(["2026-01-01T00:00:00", 10**20]),
        _cursor(["2026-01-01T00:00:00+00:00", -(10**20)]),
        "%%%",
        _cursor([None, True]),
    ],
)
async def test_forged_cursors_are_422(client: httpx.AsyncClient, cursor: str) -> None:
    for path in ("/supporters", "/conversations", "/announcements", "/keys"):
        answer = await client.get(API + path, params={"cursor": cursor})
        assert answer.status_code == 422, (path, answer.text)


async def test_a_naive_time_in_a_cursor_reads_as_utc(client: httpx.AsyncClient) -> None:
    cursor = _cursor(["2026-01-01T00:00:00", 5])
    for path in ("/conversations", "/announcements"):
        answer = await client.get(API + path, params={"cursor": cursor})
        assert answer.status_code in (200, 422), (path, answer.text)


async def test_the_openapi_document_lists_the_error_answers(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    operations = {
        (method.upper(), path): operation
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
    }
    for (method, path), operation in operations.items():
        if not path.startswith(API):
            continue
        codes = set(operation["responses"])
        assert {"401", "403", "422", "429"} <= codes, (method, path)
        if "{" in path:
            assert "404" in codes, (method, path)
        for code in codes - {"200", "201", "202", "204"}:
            content = operation["responses"][code]["content"]["application/problem+json"]
            assert "detail" in json.dumps(content["schema"]), (method, path, code)
    assert "409" in operations[("POST", f"{API}/teams")]["responses"]
    assert "409" in operations[("DELETE", f"{API}/keys/{{key_id}}")]["responses"]
    assert {"200", "409"} <= set(operations[("POST", f"{API}/polls")]["responses"])
    assert "413" in operations[("POST", f"{API}/supporters/import")]["responses"]
    conversation = operations[("POST", f"{API}/conversations/{{conversation_id}}/read")]
    (parameter,) = conversation["parameters"]
    assert parameter["schema"]["maximum"] == MAX_ID
