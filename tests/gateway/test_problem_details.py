"""Every /api/v1 error is RFC 9457 problem details (application/problem+json), a 422 never
repeats the value sent, and RALLYPOINT_API_RATE_PER_MINUTE answers 429 with Retry-After."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from tests.conftest import FakeClock, bearer, new_key

MakeClient = Callable[..., Awaitable[httpx.AsyncClient]]
API = "/api/v1"


def problem(answer: httpx.Response, status: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = answer.json()
    assert body["type"] == "about:blank"
    assert body["status"] == status
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    return body


async def test_not_found_unauthorized_forbidden_and_conflict(make_client: MakeClient) -> None:
    client = await make_client()
    admin = bearer(await new_key(client.ctx))  # type: ignore[attr-defined]
    assert problem(await client.get(f"{API}/supporters/999", headers=admin), 404)["title"] == (
        "Not Found"
    )
    problem(await client.get(f"{API}/no-such-thing", headers=admin), 404)
    unauthorized = await client.get(f"{API}/supporters")
    problem(unauthorized, 401)
    assert unauthorized.headers["www-authenticate"] == "Bearer"
    made = await client.post(
        f"{API}/supporters",
        headers=admin,
        json={"name": "Ada", "addresses": [{"channel": "sms", "address": "+14155550111"}]},
    )
    assert made.status_code == 201, made.text
    taken = await client.post(
        f"{API}/supporters",
        headers=admin,
        json={"name": "Bo", "addresses": [{"channel": "sms", "address": "+14155550111"}]},
    )
    problem(taken, 409)
    team = await client.post(f"{API}/teams", headers=admin, json={"name": "Depot"})
    lead = bearer(await new_key(client.ctx, "team_lead", team.json()["id"]))  # type: ignore[attr-defined]
    problem(await client.post(f"{API}/supporters/{made.json()['id']}/erase", headers=lead), 403)


async def test_422_names_fields_and_never_the_value(make_client: MakeClient) -> None:
    client = await make_client()
    admin = bearer(await new_key(client.ctx))  # type: ignore[attr-defined]
    sent = "Mars/Olympus-Mons-4471"
    answer = await client.post(
        f"{API}/supporters",
        headers=admin,
        json={"name": "Ada", "timezone": sent, "preferred_channels": ["pigeon-8812"]},
    )
    body = problem(answer, 422)
    fields = [e["field"] for e in body["errors"]]
    assert "body.timezone" in fields or "body.preferred_channels.0" in fields
    assert all(e["message"] for e in body["errors"])
    assert sent not in answer.text and "pigeon-8812" not in answer.text
    # A body that is not JSON at all: still a problem, not an echo.
    broken = await client.post(
        f"{API}/supporters",
        headers={**admin, "content-type": "application/json"},
        content=b'{"name": "SECRET-NAME-5521"',
    )
    assert broken.status_code in (400, 422)
    problem(broken, broken.status_code)
    assert "SECRET-NAME-5521" not in broken.text


async def test_413_for_a_body_over_the_json_limit(make_client: MakeClient) -> None:
    client = await make_client(max_json_bytes=64)
    admin = bearer(await new_key(client.ctx))  # type: ignore[attr-defined]
    answer = await client.post(f"{API}/supporters", headers=admin, json={"name": "A" * 200})
    problem(answer, 413)


async def test_429_with_retry_after_per_key(make_client: MakeClient, clock: FakeClock) -> None:
    client = await make_client(api_rate_per_minute=3)
    first = bearer(await new_key(client.ctx))  # type: ignore[attr-defined]
    other = bearer(await new_key(client.ctx))  # type: ignore[attr-defined]
    for _ in range(3):
        assert (await client.get(f"{API}/supporters", headers=first)).status_code == 200
    refused = await client.get(f"{API}/supporters", headers=first)
    problem(refused, 429)
    assert refused.headers["retry-after"] == "20"  # 3 a minute: one every 20 s
    # Another key has its own allowance.
    assert (await client.get(f"{API}/supporters", headers=other)).status_code == 200
    clock.advance(seconds=19)
    assert (await client.get(f"{API}/supporters", headers=first)).status_code == 429
    clock.advance(seconds=1)
    assert (await client.get(f"{API}/supporters", headers=first)).status_code == 200
    assert (await client.get(f"{API}/supporters", headers=first)).status_code == 429
