"""GET /api/v1/supporters?q=&inactive_days= and POST /api/v1/supporters/tags over HTTP
(the console's supporter list and bulk tagging run the same functions)."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlmodel import select

from storage.models import Supporter, SupporterTag
from tests.conftest import bearer, new_key

API = "/api/v1"


async def names(client: httpx.AsyncClient, query: str, **headers: str) -> list[str]:
    response = await client.get(f"{API}/supporters?{query}", headers=headers or None)
    assert response.status_code == 200, response.text
    return [item["name"] for item in response.json()["items"]]


async def add(client: httpx.AsyncClient, name: str, **body: object) -> int:
    response = await client.post(f"{API}/supporters", json={"name": name, **body})
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def test_search_finds_a_phone_number_typed_with_spaces_and_dashes(
    client: httpx.AsyncClient,
) -> None:
    await add(client, "Ada", addresses=[{"channel": "sms", "address": "+1 415 555 0100"}])
    await add(client, "Bo", addresses=[{"channel": "email", "address": "bo@example.org"}])
    assert await names(client, "q=(415)%20555-0100") == ["Ada"]
    assert await names(client, "q=0100") == ["Ada"]  # the last digits
    assert await names(client, "q=BO%40EXAMPLE") == ["Bo"]
    assert await names(client, "q=ada") == ["Ada"]
    assert await names(client, "q=%25") == []  # LIKE wildcards are plain text


async def test_inactive_days_counts_never_replied_from_joining(
    client: httpx.AsyncClient,
) -> None:
    ctx = client.ctx  # type: ignore[attr-defined]
    now = ctx.clock()
    ids = {name: await add(client, name) for name in ("quiet", "recent", "never_old", "new")}
    async with ctx.sessions() as session:
        for name, joined, last in (
            ("quiet", 100, 45),
            ("recent", 100, 1),
            ("never_old", 31, None),
            ("new", 2, None),
        ):
            row = await session.get(Supporter, ids[name])
            assert row is not None
            row.created_at = now - timedelta(days=joined)
            row.last_inbound_at = now - timedelta(days=last) if last is not None else None
            session.add(row)
        await session.commit()
    assert await names(client, "inactive_days=30") == ["quiet", "never_old"]
    assert await names(client, "inactive_days=0") == ["quiet", "recent", "never_old", "new"]
    bad = await client.get(f"{API}/supporters?inactive_days=-1")
    assert bad.status_code == 422


async def test_bulk_tag_is_all_or_nothing_and_scoped_to_a_leads_team(
    client: httpx.AsyncClient,
) -> None:
    ctx = client.ctx  # type: ignore[attr-defined]
    north = (await client.post(f"{API}/teams", json={"name": "North"})).json()["id"]
    mine = await add(client, "Mine", teams=[north])
    other = await add(client, "Other")
    lead = bearer(await new_key(ctx, "team_lead", north))

    refused = await client.post(
        f"{API}/supporters/tags",
        json={"supporter_ids": [mine, other], "tag": "phonebank"},
        headers=lead,
    )
    assert refused.status_code == 404
    async with ctx.sessions() as session:
        assert (await session.exec(select(SupporterTag))).all() == []  # not even `mine`
    ok = await client.post(
        f"{API}/supporters/tags", json={"supporter_ids": [mine], "tag": " phonebank "}, headers=lead
    )
    assert ok.status_code == 200 and ok.json() == {"changed": 1}
    again = await client.post(
        f"{API}/supporters/tags", json={"supporter_ids": [mine, other], "tag": "phonebank"}
    )
    assert again.json() == {"changed": 1}  # only `other` gained it
    blank = await client.post(f"{API}/supporters/tags", json={"supporter_ids": [mine], "tag": " "})
    assert blank.status_code == 422
    removed = await client.post(
        f"{API}/supporters/tags",
        json={"supporter_ids": [mine, other], "tag": "phonebank", "action": "remove"},
    )
    assert removed.json() == {"changed": 2}
    async with ctx.sessions() as session:
        assert (await session.exec(select(SupporterTag))).all() == []
