"""The console's calendar download over plain HTTP: the same file as the API's `.ics`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx

from tests.conftest import bearer, new_key
from tests.console.test_console_http import add_user, sign_in

Factory = Callable[..., Awaitable[httpx.AsyncClient]]


async def test_the_console_serves_an_events_ics_as_the_api_does(make_client: Factory) -> None:
    client = await make_client()
    key = await new_key(client.ctx)  # type: ignore[attr-defined]
    made = await client.post(
        "/api/v1/events",
        headers=bearer(key),
        json={"title": "Tenants' <meeting>", "starts_at": "2030-03-10T18:00:00+00:00"},
    )
    assert made.status_code == 201, made.text
    event_id = made.json()["id"]
    api = await client.get(f"/api/v1/events/{event_id}.ics", headers=bearer(key))
    await add_user(client)
    await sign_in(client)
    page = await client.get(f"/console/events/{event_id}.ics")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/calendar")
    assert page.headers["content-disposition"] == f'attachment; filename="event-{event_id}.ics"'
    assert "SUMMARY:Tenants' <meeting>" in page.text
    assert page.text == api.text
    missing = await client.get(f"/console/events/{event_id + 1000}.ics")
    assert missing.status_code == 404
