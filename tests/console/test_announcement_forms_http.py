"""The announcement, poll and check-in forms over plain HTTP: bad input re-renders with what
was typed and stores nothing; a team lead cannot open another team's report or poll."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx

from gateway.users import create_user
from storage.models import Announcement, Checkin, Poll
from tests.conftest import bearer, new_key
from tests.console.test_console_http import add_user, csrf_of, sign_in
from tests.gateway.seed import count, make_team

Factory = Callable[..., Awaitable[httpx.AsyncClient]]


async def signed_in(make_client: Factory) -> tuple[httpx.AsyncClient, str]:
    client = await make_client()
    await add_user(client)
    await sign_in(client)
    page = await client.get("/console/announcements/new")
    assert page.status_code == 200
    return client, csrf_of(page.text)


async def test_bad_input_keeps_what_was_typed_and_stores_nothing(make_client: Factory) -> None:
    client, csrf = await signed_in(make_client)
    ctx = client.ctx  # type: ignore[attr-defined]
    await make_team(ctx, "North")
    no_audience = await client.post(
        "/console/announcements/preview", data={"csrf_token": csrf, "body": "Typed <b>text</b>"}
    )
    assert no_audience.status_code == 422
    assert "Choose who gets it" in no_audience.text
    assert "Typed &lt;b&gt;text&lt;/b&gt;</textarea>" in no_audience.text
    past = await client.post(
        "/console/announcements/preview",
        data={"csrf_token": csrf, "body": "x", "everyone": "on", "send_at": "2020-01-01T10:00"},
    )
    assert past.status_code == 422 and "in the future" in past.text
    unpreviewed = await client.post(
        "/console/announcements", data={"csrf_token": csrf, "body": "x", "everyone": "on"}
    )
    assert unpreviewed.status_code == 422 and "Preview it first" in unpreviewed.text
    one_option = await client.post(
        "/console/polls",
        data={
            "csrf_token": csrf,
            "question": "Day?",
            "options": "Only one",
            "everyone": "on",
            "idempotency_key": "console-abc",
        },
    )
    assert one_option.status_code == 422 and "Only one</textarea>" in one_option.text
    bad_time = await client.post(
        "/console/checkins",
        data={
            "csrf_token": csrf,
            "team": "North",
            "weekday": "1",
            "local_time": "25:99",
            "timezone": "",
            "prompt": "Kept prompt",
            "inactive_days": "14",
            "nudge_text": "",
        },
    )
    assert bad_time.status_code == 422 and "Kept prompt</textarea>" in bad_time.text
    for model in (Announcement, Poll, Checkin):
        assert await count(ctx, model) == 0


async def test_a_team_lead_cannot_open_another_teams_report(make_client: Factory) -> None:
    client = await make_client()
    ctx = client.ctx  # type: ignore[attr-defined]
    north = await make_team(ctx, "North")
    await make_team(ctx, "South")
    admin = bearer(await new_key(ctx))
    theirs = await client.post(
        "/api/v1/polls",
        json={"question": "Q?", "options": ["a", "b"], "audience": {"teams": ["South"]}},
        headers=admin,
    )
    assert theirs.status_code == 202, theirs.text
    async with ctx.sessions() as session:
        await create_user(
            session,
            email="lead@example.org",
            password="correct horse battery",
            role="team_lead",
            team_id=north,
            now=ctx.clock(),
        )
    await sign_in(client, "lead@example.org")
    poll = theirs.json()
    report = await client.get(f"/console/announcements/{poll['announcement_id']}")
    assert report.status_code == 404 and "Traceback" not in report.text
    assert (await client.get(f"/console/polls/{poll['id']}")).status_code == 404
    listing = await client.get("/console/announcements")
    assert listing.status_code == 200 and "Q?" not in listing.text
