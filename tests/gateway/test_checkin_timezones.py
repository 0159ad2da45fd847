"""A check-in's own timezone over the REST API: validation, the JSON, DST weeks, and
changing the timezone after a run (the FakeClock drives `run_due_checkins`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from routing.context import AppContext
from routing.organizing.checkin_schedule import latest_occurrence, next_occurrence, reschedule
from routing.organizing.checkins import run_due_checkins
from storage.models import Checkin
from tests.conftest import FakeClock, bearer, new_key

MakeClient = Callable[..., Awaitable[httpx.AsyncClient]]
BERLIN = ZoneInfo("Europe/Berlin")
MONDAY, SUNDAY = 0, 6


def utc(month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


async def org(make_client: MakeClient, timezone: str = "America/New_York") -> httpx.AsyncClient:
    """The app with an admin key, the org in `timezone`, and a team "Nairobi"."""
    client = await make_client(default_timezone=timezone)
    client.headers.update(bearer(await new_key(client.ctx)))  # type: ignore[attr-defined]
    assert (await client.post("/api/v1/teams", json={"name": "Nairobi"})).status_code == 201
    return client


async def create(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    body = {"weekday": MONDAY, "local_time": "18:00", "prompt": "How did it go?", **fields}
    answer = await client.post("/api/v1/teams/Nairobi/checkins", json=body)
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


async def patch(client: httpx.AsyncClient, checkin_id: int, **fields: Any) -> dict[str, Any]:
    answer = await client.patch(f"/api/v1/checkins/{checkin_id}", json=fields)
    assert answer.status_code == 200, answer.text
    changed: dict[str, Any] = answer.json()
    return changed


async def ran(client: httpx.AsyncClient) -> list[int]:
    """The check-ins the scheduler runs now."""
    ctx: AppContext = client.ctx  # type: ignore[attr-defined]
    return [run.checkin_id for run in (await run_due_checkins(ctx)).runs]


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def test_own_timezone_in_the_json_and_on_patch(
    make_client: MakeClient, clock: FakeClock
) -> None:
    client = await org(make_client)  # Wednesday 4 March, New York on EST
    default = await create(client)
    assert (default["timezone"], default["own_timezone"]) == ("America/New_York", None)
    assert at(default["next_run_at"]) == utc(3, 9, 22)  # Monday 18:00 EDT
    nairobi = await create(client, timezone="Africa/Nairobi")
    assert (nairobi["timezone"], nairobi["own_timezone"]) == ("Africa/Nairobi", "Africa/Nairobi")
    assert at(nairobi["next_run_at"]) == utc(3, 9, 15)  # Monday 18:00 EAT

    manila = await patch(client, nairobi["id"], timezone="Asia/Manila", local_time="19:30")
    assert (manila["timezone"], manila["local_time"], manila["prompt"]) == (
        "Asia/Manila",
        "19:30",
        "How did it go?",
    )
    assert at(manila["next_run_at"]) == utc(3, 9, 11, 30)
    back = await patch(client, nairobi["id"], timezone=None)
    assert (back["timezone"], back["own_timezone"]) == ("America/New_York", None)
    assert at(back["next_run_at"]) == utc(3, 9, 23, 30)
    listed = (await client.get("/api/v1/checkins")).json()["items"]
    assert [c["own_timezone"] for c in listed] == [None, None]


async def test_an_unknown_timezone_is_refused_and_nothing_stored(
    make_client: MakeClient,
) -> None:
    client = await org(make_client)
    for bad in ["Mars/Olympus_Mons", "Africa/nairobi", "../etc/passwd"]:
        body = {"weekday": 0, "local_time": "18:00", "prompt": "Hi", "timezone": bad}
        answer = await client.post("/api/v1/teams/Nairobi/checkins", json=body)
        assert answer.status_code == 422, bad
        assert answer.json()["errors"][0]["field"] == "body.timezone"
    assert (await client.get("/api/v1/checkins")).json()["items"] == []

    checkin = await create(client, timezone="Africa/Nairobi")
    answer = await client.patch(
        f"/api/v1/checkins/{checkin['id']}", json={"timezone": "Nowhere/Town", "prompt": "New"}
    )
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "body.timezone"
    assert (await client.get(f"/api/v1/checkins/{checkin['id']}")).json() == checkin


async def test_a_team_lead_patches_only_their_teams_checkins(make_client: MakeClient) -> None:
    client = await org(make_client)
    ctx: AppContext = client.ctx  # type: ignore[attr-defined]
    checkin = await create(client)
    manila = (await client.post("/api/v1/teams", json={"name": "Manila"})).json()
    lead = bearer(await new_key(ctx, "team_lead", manila["id"]))
    own = await client.post(
        "/api/v1/teams/Manila/checkins",
        json={"weekday": 0, "local_time": "18:00", "prompt": "Hi"},
        headers=lead,
    )
    answer = await client.patch(
        f"/api/v1/checkins/{own.json()['id']}", json={"timezone": "Asia/Manila"}, headers=lead
    )
    assert answer.status_code == 200 and answer.json()["own_timezone"] == "Asia/Manila"
    url = f"/api/v1/checkins/{checkin['id']}"
    answer = await client.patch(url, json={"timezone": "Asia/Manila"}, headers=lead)
    assert answer.status_code == 404
    assert (await client.get(url)).json()["own_timezone"] is None


@pytest.mark.parametrize(
    ("zone", "before", "after"),
    [
        # Monday 18:00: New York springs forward on Sunday 8 March, Berlin on 29 March.
        ("America/New_York", utc(3, 2, 23), utc(3, 9, 22)),
        ("Europe/Berlin", utc(3, 23, 17), utc(3, 30, 16)),
    ],
)
async def test_a_dst_week_runs_at_the_local_time(
    make_client: MakeClient, clock: FakeClock, zone: str, before: datetime, after: datetime
) -> None:
    clock.set(before - timedelta(days=2))
    client = await org(make_client, timezone="UTC")
    checkin = await create(client, timezone=zone)
    assert at(checkin["next_run_at"]) == before
    clock.set(before - timedelta(minutes=1))
    assert await ran(client) == []
    clock.set(before)
    assert await ran(client) == [checkin["id"]]
    # The next 18:00 is an hour earlier in UTC.
    seen = (await client.get(f"/api/v1/checkins/{checkin['id']}")).json()
    assert (at(seen["last_run_at"]), at(seen["next_run_at"])) == (before, after)
    clock.set(after - timedelta(minutes=1))
    assert await ran(client) == []
    clock.set(after)
    assert await ran(client) == [checkin["id"]]
    clock.set(before + timedelta(days=7))  # 18:00 on the old offset: already run
    assert await ran(client) == []


async def test_a_skipped_or_repeated_local_time_runs_once(
    make_client: MakeClient, clock: FakeClock
) -> None:
    """Sunday 02:30 in Berlin: on 29 March the clocks skip it (fold=0: 03:30 CEST, 01:30
    UTC), on 25 October they pass it twice (fold=0: the first, 00:30 UTC)."""
    clock.set(utc(3, 25))
    client = await org(make_client, timezone="UTC")
    checkin = await create(client, weekday=SUNDAY, local_time="02:30", timezone="Europe/Berlin")
    url = f"/api/v1/checkins/{checkin['id']}"
    assert at(checkin["next_run_at"]) == utc(3, 29, 1, 30)
    clock.set(utc(3, 29, 1, 29))
    assert await ran(client) == []
    clock.set(utc(3, 29, 1, 30))
    assert await ran(client) == [checkin["id"]]
    assert at((await client.get(url)).json()["next_run_at"]) == utc(4, 5, 0, 30)

    clock.set(utc(10, 24))
    assert await ran(client) == [checkin["id"]]  # the missed weeks, once
    clock.set(utc(10, 25, 0, 29))
    assert await ran(client) == []
    clock.set(utc(10, 25, 0, 30))
    assert await ran(client) == [checkin["id"]]
    clock.set(utc(10, 25, 1, 30))  # the second 02:30
    assert await ran(client) == []
    assert at((await client.get(url)).json()["next_run_at"]) == utc(11, 1, 1, 30)


@pytest.mark.parametrize(
    ("now", "latest", "following"),
    [
        # Before, inside and after the skipped hour on 29 March (02:00-03:00 local).
        (utc(3, 29, 0, 59), utc(3, 22, 1, 30), utc(3, 29, 1, 30)),
        (utc(3, 29, 1, 15), utc(3, 22, 1, 30), utc(3, 29, 1, 30)),
        (utc(3, 29, 1, 30), utc(3, 29, 1, 30), utc(4, 5, 0, 30)),
        # The repeated hour on 25 October (02:00-03:00 local, twice).
        (utc(10, 25, 0, 30), utc(10, 25, 0, 30), utc(11, 1, 1, 30)),
        (utc(10, 25, 1, 10), utc(10, 25, 0, 30), utc(11, 1, 1, 30)),
    ],
)
def test_occurrences_around_dst_changes(
    now: datetime, latest: datetime, following: datetime
) -> None:
    assert latest_occurrence(SUNDAY, "02:30", BERLIN, now) == latest
    assert next_occurrence(SUNDAY, "02:30", BERLIN, now) == following


async def test_changing_the_timezone_after_a_run_does_not_run_it_again(
    make_client: MakeClient, clock: FakeClock
) -> None:
    clock.set(utc(3, 8))
    client = await org(make_client, timezone="UTC")
    checkin = await create(client, timezone="Africa/Nairobi")  # Monday 18:00 = 15:00 UTC
    url = f"/api/v1/checkins/{checkin['id']}"
    clock.set(utc(3, 9, 15))
    assert await ran(client) == [checkin["id"]]

    # Moved west while 18:00 is still ahead there (London: 18:00 UTC): not today.
    clock.set(utc(3, 9, 15, 30))
    london = await patch(client, checkin["id"], timezone="Europe/London")
    assert at(london["last_run_at"]) == utc(3, 9, 18)  # this Monday's 18:00, counted as run
    assert at(london["next_run_at"]) == utc(3, 16, 18)
    clock.set(utc(3, 9, 18))
    assert await ran(client) == []
    # Moved where 18:00 has passed since the run (Lagos: 17:00 UTC): not at once either.
    clock.set(utc(3, 9, 19))
    await patch(client, checkin["id"], timezone="Africa/Lagos")
    assert await ran(client) == []
    # Nor for a later time of day.
    await patch(client, checkin["id"], local_time="20:30")
    clock.set(utc(3, 9, 19, 30))
    assert await ran(client) == []

    # East (Manila: 10:00 UTC): next Monday.
    manila = await patch(client, checkin["id"], timezone="Asia/Manila", local_time="18:00")
    assert at(manila["next_run_at"]) == utc(3, 16, 10)
    clock.set(utc(3, 16, 9, 59))
    assert await ran(client) == []
    clock.set(utc(3, 16, 10))
    assert await ran(client) == [checkin["id"]]

    # Changed before this week's run: it runs at the new zone's time.
    clock.set(utc(3, 23, 8))
    await patch(client, checkin["id"], timezone="Europe/London")
    clock.set(utc(3, 23, 10))
    assert await ran(client) == []
    clock.set(utc(3, 23, 18))
    assert await ran(client) == [checkin["id"]]
    assert at((await client.get(url)).json()["last_run_at"]) == utc(3, 23, 18)


async def test_a_change_read_before_a_run_is_not_written(
    make_client: MakeClient, clock: FakeClock
) -> None:
    """A timezone change and a run go by `last_run_at` alike: a change computed from the
    check-in as it was before the run writes nothing."""
    clock.set(utc(3, 8))
    client = await org(make_client, timezone="UTC")
    checkin = await create(client, timezone="Africa/Nairobi")
    ctx: AppContext = client.ctx  # type: ignore[attr-defined]
    async with ctx.sessions() as session:
        stale = await session.get(Checkin, checkin["id"])
        await session.commit()
        assert stale is not None
        clock.set(utc(3, 9, 19))
        assert await ran(client) == [checkin["id"]]
        changes = {"timezone": "Africa/Lagos"}
        assert not await reschedule(session, stale, changes, ZoneInfo("UTC"))
        await session.rollback()
    seen = (await client.get(f"/api/v1/checkins/{checkin['id']}")).json()
    assert (seen["own_timezone"], at(seen["last_run_at"])) == ("Africa/Nairobi", utc(3, 9, 19))
