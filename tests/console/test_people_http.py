"""Supporter and team pages over plain HTTP (no browser): CSRF refusals, scope, errors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
from sqlmodel import select

from storage.models import Supporter, SupporterTag
from tests.console.test_console_http import add_user, csrf_of, sign_in

Factory = Callable[..., Awaitable[httpx.AsyncClient]]


async def signed_in(make_client: Factory) -> httpx.AsyncClient:
    client = await make_client()
    await add_user(client)
    assert (await sign_in(client)).status_code == 303
    return client


async def add_supporter(client: httpx.AsyncClient, name: str = "Ann") -> int:
    ctx = client.ctx  # type: ignore[attr-defined]
    async with ctx.sessions() as session:
        row = Supporter(name=name, created_at=ctx.clock(), updated_at=ctx.clock())
        session.add(row)
        await session.commit()
        assert row.id is not None
        return row.id


async def test_bulk_tag_without_the_csrf_token_is_refused(make_client: Factory) -> None:
    client = await signed_in(make_client)
    sid = await add_supporter(client)
    data = {"supporter_ids": str(sid), "tag": "x", "action": "add"}
    forged = await client.post("/console/supporters/tags", data=data)
    assert forged.status_code == 403 and "<h1>Forbidden</h1>" in forged.text
    wrong = await client.post("/console/supporters/tags", data={**data, "csrf_token": "y" * 43})
    assert wrong.status_code == 403
    async with client.ctx.sessions() as session:  # type: ignore[attr-defined]
        assert (await session.exec(select(SupporterTag))).all() == []
    page = await client.get("/console/supporters")
    done = await client.post(
        "/console/supporters/tags", data={**data, "csrf_token": csrf_of(page.text)}
    )
    assert done.status_code == 303 and done.headers["location"] == "/console/supporters?changed=1"


async def test_list_survives_bad_filters(make_client: Factory) -> None:
    client = await signed_in(make_client)
    await add_supporter(client, "<b>Bold</b>")
    page = await client.get("/console/supporters?inactive=soon&team=999&channel=fax&cursor=zz")
    assert page.status_code in (400, 422) and "Traceback" not in page.text
    listed = await client.get("/console/supporters?inactive=soon&team=999&channel=fax")
    assert listed.status_code == 400 and "whole number of days" in listed.text
    assert 'value="soon"' in listed.text and "&lt;b&gt;Bold&lt;/b&gt;" in listed.text
