"""The console over plain HTTP (no browser): cookies' flags, CSRF, sessions' lifetime,
error pages, static files."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

import httpx
import pytest
from sqlalchemy import text

from gateway.users import create_user
from tests.conftest import FakeClock, new_key

PASSWORD = "correct horse battery"
Factory = Callable[..., Awaitable[httpx.AsyncClient]]


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


async def add_user(client: httpx.AsyncClient, email: str = "lee@example.org", **kw: object) -> int:
    ctx = client.ctx  # type: ignore[attr-defined]
    async with ctx.sessions() as session:
        row = await create_user(
            session,
            email=email,
            password=PASSWORD,
            role=str(kw.get("role", "coordinator")),
            now=ctx.clock(),
        )
    assert row.id is not None
    return row.id


async def sign_in(client: httpx.AsyncClient, email: str = "lee@example.org") -> httpx.Response:
    page = await client.get("/console/")
    return await client.post(
        "/console/sign-in",
        data={"email": email, "password": PASSWORD, "csrf_token": csrf_of(page.text)},
    )


async def test_session_cookie_flags_behind_https(make_client: Factory) -> None:
    client = await make_client()  # public_url https://rallypoint.example.org
    await add_user(client)
    first = await client.get("/console/")
    assert first.status_code == 200 and 'id="email"' in first.text
    pre = first.headers["set-cookie"].lower()
    assert "httponly" in pre and "secure" in pre and "samesite=strict" in pre
    signed = await sign_in(client)
    assert signed.status_code == 303 and signed.headers["location"] == "/console/"
    cookie = signed.headers["set-cookie"].lower()
    assert cookie.startswith("rp_session=")
    assert "httponly" in cookie and "secure" in cookie and "samesite=lax" in cookie
    inbox = await client.get("/console/")
    assert "<h1>Inbox</h1>" in inbox.text and inbox.headers["cache-control"] == "no-store"


async def test_no_secure_flag_over_plain_http(make_client: Factory) -> None:
    client = await make_client(public_url="http://127.0.0.1:8000")
    await add_user(client)
    signed = await sign_in(client)
    assert "secure" not in signed.headers["set-cookie"].lower()


async def test_sign_in_needs_the_double_submit_token(make_client: Factory) -> None:
    client = await make_client()
    await add_user(client)
    await client.get("/console/")  # sets the rp_csrf cookie
    forged = await client.post(
        "/console/sign-in",
        data={"email": "lee@example.org", "password": PASSWORD, "csrf_token": "x" * 43},
    )
    assert forged.status_code == 403 and "rp_session" not in forged.headers.get("set-cookie", "")
    assert "Traceback" not in forged.text and "<h1>Forbidden</h1>" in forged.text


async def test_idle_session_expires(make_client: Factory, clock: FakeClock) -> None:
    client = await make_client(session_hours=2)
    await add_user(client)
    await sign_in(client)
    clock.advance(hours=1, minutes=59)
    assert "<h1>Inbox</h1>" in (await client.get("/console/")).text  # and touched now
    clock.advance(hours=1, minutes=59)
    assert "<h1>Inbox</h1>" in (await client.get("/console/")).text
    clock.advance(hours=2, seconds=1)
    assert "<h1>Sign in</h1>" in (await client.get("/console/")).text


async def test_error_pages_are_plain(make_client: Factory) -> None:
    client = await make_client()
    missing = await client.get("/console/no-such-page")
    assert missing.status_code == 404 and "<h1>Not Found</h1>" in missing.text
    await add_user(client)
    await sign_in(client)
    ctx = client.ctx  # type: ignore[attr-defined]

    async def rename(old: str, new: str) -> None:
        async with ctx.sessions() as session:
            await session.execute(text(f"ALTER TABLE {old} RENAME TO {new}"))
            await session.commit()

    await rename("conversations", "conversations_away")  # the inbox's query fails
    quiet = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=client.app, raise_app_exceptions=False),  # type: ignore[attr-defined]
        base_url=str(client.base_url),
        cookies=client.cookies,
    )
    try:
        failed = await quiet.get("/console/")
    finally:
        await rename("conversations_away", "conversations")
    assert failed.status_code == 500
    assert "Internal Server Error" in failed.text and "Traceback" not in failed.text
    assert "conversations" not in failed.text and "SELECT" not in failed.text
    # The API keeps its problem details.
    api_missing = await client.get("/api/v1/nothing")
    assert api_missing.headers["content-type"] == "application/problem+json"
    assert api_missing.json()["detail"] == "Not Found"


@pytest.mark.parametrize(
    "path", ["console.css", "vendor/htmx-2.0.11.min.js", "vendor/htmx-LICENSE.txt"]
)
async def test_static_files_are_cached_long(make_client: Factory, path: str) -> None:
    client = await make_client()
    got = await client.get(f"/console/static/{path}")
    assert got.status_code == 200
    assert "max-age=31536000" in got.headers["cache-control"]
    assert (await client.get("/console/static/nope.css")).status_code == 404


async def test_deleting_a_team_signs_its_leads_out_for_good(make_client: Factory) -> None:
    client = await make_client()
    admin = {"Authorization": f"Bearer {await new_key(client.ctx)}"}  # type: ignore[attr-defined]
    team = (await client.post("/api/v1/teams", json={"name": "North"}, headers=admin)).json()
    made = await client.post(
        "/api/v1/users",
        headers=admin,
        json={
            "email": "lee@example.org",
            "password": PASSWORD,
            "role": "team_lead",
            "team": "North",
        },
    )
    assert made.status_code == 201
    assert (await sign_in(client)).status_code == 303
    assert "<h1>Inbox</h1>" in (await client.get("/console/")).text
    assert (await client.delete(f"/api/v1/teams/{team['id']}", headers=admin)).status_code == 204
    assert "<h1>Sign in</h1>" in (await client.get("/console/")).text
    users = (await client.get("/api/v1/users", headers=admin)).json()["items"]
    assert users[0]["active"] is False and users[0]["team"] is None
    assert (await sign_in(client)).status_code == 401


async def test_a_new_password_ends_the_old_sessions(make_client: Factory) -> None:
    client = await make_client()
    admin = {"Authorization": f"Bearer {await new_key(client.ctx)}"}  # type: ignore[attr-defined]
    user_id = await add_user(client)
    await sign_in(client)
    changed = await client.patch(
        f"/api/v1/users/{user_id}", headers=admin, json={"password": "a brand new pass phrase"}
    )
    assert changed.status_code == 200
    assert "<h1>Sign in</h1>" in (await client.get("/console/")).text
