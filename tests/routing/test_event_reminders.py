"""Event reminders: 24 h and 1 h before each occurrence to those who said yes or maybe,
once each (claimed in the database, so two schedulers running together and a restart
send nothing twice), through the check-in scheduler's loop, on an injected clock."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from gateway.checkin_scheduler import CheckinScheduler
from gateway.settings import Settings, parse_reminders
from routing.organizing.event_reminders import due_offsets, run_due_reminders
from tests.conftest import FakeClock
from tests.e2e.harness import MakeClient, Org

SMS = "+14155550111"
SMS_NO = "+14155550112"
TG = 5550133


async def invited(make_client: MakeClient, clock: FakeClock, **settings: object) -> Org:
    org = await Org.start(make_client, clock, **settings)
    await org.team("North")
    for name, channel, address in (
        ("Sam", "sms", SMS),
        ("Nia", "sms", SMS_NO),
        ("Tove", "telegram", str(TG)),
    ):
        await org.supporter(
            name=name, addresses=[{"channel": channel, "address": address}], teams=["North"]
        )
    await org.api(
        "POST",
        "/events",
        201,
        json={
            "title": "Weekly call",
            "starts_at": "2026-03-10T18:00:00Z",
            "location_url": "https://meet.example.org/w",
            "audience": {"teams": ["North"]},
        },
    )
    await org.dispatch()
    await org.sms(SMS, "1")
    await org.sms(SMS_NO, "2")
    await org.telegram(TG, "3")
    await org.dispatch()
    return org


def reminders(org: Org, phone: str | None = None) -> list[str]:
    texts = org.providers.sms_to(phone) if phone else org.providers.telegram_to(TG)
    return [t for t in texts if t.startswith("Reminder:")]


async def test_reminders_go_to_yes_and_maybe_once_each(
    make_client: MakeClient, clock: FakeClock
) -> None:
    org = await invited(make_client, clock)
    scheduler = CheckinScheduler(org.ctx, interval=60)
    clock.set(datetime(2026, 3, 9, 17, 59, tzinfo=UTC))
    await scheduler.run_once()
    await org.dispatch()
    assert reminders(org, SMS) == []
    clock.set(datetime(2026, 3, 9, 18, 0, tzinfo=UTC))  # 24 h before
    await scheduler.run_once()
    await scheduler.run_once()  # a second round: nothing again
    await org.dispatch()
    assert reminders(org, SMS) == [
        "Reminder: Weekly call\nTue 10 Mar 2026, 18:00 UTC\nhttps://meet.example.org/w"
    ]
    assert len(reminders(org)) == 1 and reminders(org, SMS_NO) == []
    clock.set(datetime(2026, 3, 10, 17, 30, tzinfo=UTC))  # within the last hour
    await scheduler.run_once()
    await org.dispatch()
    assert len(reminders(org, SMS)) == 2 and len(reminders(org)) == 2
    clock.set(datetime(2026, 3, 10, 18, 0, tzinfo=UTC))  # started: nothing more
    assert await run_due_reminders(org.ctx) == 0


async def test_two_schedulers_at_once_send_one_reminder(
    make_client: MakeClient, clock: FakeClock
) -> None:
    org = await invited(make_client, clock)
    clock.set(datetime(2026, 3, 10, 17, 5, tzinfo=UTC))
    # Both due (the scheduler was down): only the nearest, 1 h, is sent, and only once.
    results = await asyncio.gather(run_due_reminders(org.ctx), run_due_reminders(org.ctx))
    assert sorted(results) == [0, 1]
    assert await run_due_reminders(org.ctx) == 0  # as after a restart: the claim is stored
    await org.dispatch()
    assert len(reminders(org, SMS)) == 1


async def test_cancelled_events_and_late_events_skip_reminders(
    make_client: MakeClient, clock: FakeClock
) -> None:
    org = await invited(make_client, clock, event_reminders="2h")
    [event] = (await org.api("GET", "/events"))["items"]
    await org.api("POST", f"/events/{event['id']}/cancel")
    clock.set(datetime(2026, 3, 10, 16, 30, tzinfo=UTC))
    assert await run_due_reminders(org.ctx) == 0


def test_due_offsets_skip_reminders_older_than_the_event() -> None:
    start = datetime(2026, 3, 10, 18, 0, tzinfo=UTC)
    made_late = datetime(2026, 3, 10, 16, 0, tzinfo=UTC)
    now = datetime(2026, 3, 10, 17, 0, tzinfo=UTC)
    assert due_offsets([86_400, 3_600], start, made_late, now) == [3_600]
    assert due_offsets([86_400, 3_600], start, made_late, made_late) == []


def test_the_setting_names_the_variable_on_a_bad_value() -> None:
    assert parse_reminders("24h, 1h") == [86_400, 3_600]
    assert parse_reminders("90s,2d,15m") == [172_800, 900, 90]
    assert parse_reminders("none") == []
    for bad in ("24", "1h,", "1w", "0m", "h"):
        with pytest.raises(ValidationError, match="RALLYPOINT_EVENT_REMINDERS"):
            Settings(event_reminders=bad)
