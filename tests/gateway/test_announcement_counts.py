"""The announcement report reads counters kept by triggers on `messages`
(storage/announcement_counts.py), never the messages themselves: here an announcement goes
through fan-out, sends, a refused send, a WhatsApp failure that falls back to SMS,
fallback on silence, signed status callbacks (delivered, read, failed) and an erasure, and
after every step the report must equal a count made directly in SQL. The backfill
(`rebuild_announcement_counts`) must give the same counters."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import text

from channels.twilio.fake import Reply
from routing.dispatch.silence import fall_back_on_silence
from storage.announcement_counts import fold_count_changes, rebuild_announcement_counts
from tests.conftest import FakeClock
from tests.e2e.harness import MakeClient, Org

DUAL = "+14155550144"  # WhatsApp first, SMS second
READER = "+14155550145"
BOUNCE = "+14155550146"
REFUSED = "+14155550147"
SILENT_PHONE = "+14155550148"
SILENT_CHAT = 5550148


async def counted_in_sql(org: Org, announcement_id: int) -> dict[str, Any]:
    """What the report must say, counted from the messages (and the erased counts)."""
    async with org.ctx.sessions() as session:
        rows = (
            await session.execute(
                text(
                    "SELECT status, coalesce(channel, 'none'), count(*),"
                    " coalesce(sum(CASE WHEN channel = 'sms' THEN segments ELSE 0 END), 0),"
                    " count(fallback_from),"
                    " sum(CASE WHEN fallback_from IS NOT NULL AND status IN"
                    " ('sent', 'delivered', 'read') THEN 1 ELSE 0 END)"
                    " FROM messages WHERE announcement_id = :a GROUP BY status, channel"
                ),
                {"a": announcement_id},
            )
        ).all()
        erased = (
            await session.execute(
                text(
                    "SELECT status, coalesce(channel, 'none'), count, segments"
                    " FROM erased_deliveries WHERE announcement_id = :a"
                ),
                {"a": announcement_id},
            )
        ).all()
    counts: dict[str, int] = {}
    by_channel: dict[str, dict[str, int]] = {}
    for status, channel, n, *_ in [*rows, *erased]:
        counts[status] = counts.get(status, 0) + n
        per = by_channel.setdefault(channel, {})
        per[status] = per.get(status, 0) + n
    return {
        "counts": counts,
        "by_channel": by_channel,
        "segments": sum(int(r[3]) for r in rows) + sum(int(r[3]) for r in erased),
        "fallback_on_silence": sum(int(r[4]) for r in rows),
        "reached_on_fallback": sum(int(r[5]) for r in rows),
    }


async def assert_report_matches(org: Org, announcement_id: int) -> dict[str, Any]:
    report = await org.api("GET", f"/announcements/{announcement_id}")
    expected = await counted_in_sql(org, announcement_id)
    assert {key: report[key] for key in expected} == expected
    failed = [f["message_id"] for f in report["failures"]]
    assert failed == sorted(failed)
    assert len(failed) == expected["counts"].get("failed", 0) + expected["counts"].get(
        "undelivered", 0
    )
    return dict(report)


async def twilio_status(org: Org, sid: str, status: str, error_code: int | None = None) -> None:
    url, params, headers = org.providers.twilio.status_callback(sid, status, error_code)
    answer = await org.client.post(httpx.URL(url).path, data=params, headers={**headers})
    assert answer.status_code == 200, answer.text


def sid_to(org: Org, phone: str) -> str:
    [sid] = [r.sid for r in org.providers.twilio.requests if r.get("To") == phone and r.sid]
    assert sid is not None
    return sid


async def test_the_report_equals_a_count_in_sql_through_an_announcements_life(
    make_client: MakeClient, clock: FakeClock
) -> None:
    org = await Org.start(make_client, clock, cloud_whatsapp=True)
    await org.team("Canvassing")

    def member(name: str, *addresses: tuple[str, str]) -> Any:
        return org.supporter(
            name=name,
            addresses=[{"channel": c, "address": a} for c, a in addresses],
            preferred_channels=[c for c, _ in addresses],
            teams=["Canvassing"],
        )

    await member("Dana Dual", ("whatsapp", DUAL), ("sms", DUAL))
    reader = await member("Rae Reader", ("sms", READER))
    await member("Bo Bounce", ("sms", BOUNCE))
    await member("Ray Refused", ("sms", REFUSED))
    await member("Sil Silent", ("telegram", str(SILENT_CHAT)), ("sms", SILENT_PHONE))
    await member("Oz Optout", ("sms", "+14155550149"))
    await org.sms("+14155550149", "STOP")
    await org.cloud_whatsapp(DUAL, "Hello!")  # the WhatsApp window is open
    org.providers.twilio.script(REFUSED, Reply.error(21211, message="not a valid number"))

    created = await org.api(
        "POST",
        "/announcements",
        202,
        json={
            "body": "Rally at noon",
            "audience": {"teams": ["Canvassing"]},
            "fallback_after": "2h",
        },
    )
    announcement = created["id"]
    report = await assert_report_matches(org, announcement)  # fanned out, nothing sent
    assert report["counts"] == {"queued": 5, "skipped": 1}

    await org.dispatch()
    report = await assert_report_matches(org, announcement)
    assert report["counts"] == {"sent": 4, "failed": 1, "skipped": 1}

    # Status callbacks over the signed webhooks: read, a late failure, WhatsApp's 131047.
    await twilio_status(org, sid_to(org, READER), "delivered")
    await twilio_status(org, sid_to(org, READER), "read")
    await twilio_status(org, sid_to(org, BOUNCE), "undelivered", error_code=30003)
    [accepted] = org.providers.cloud.accepted
    body, headers = org.providers.cloud.status_webhook(accepted.wamid, "failed", error_code=131047)
    assert (await org.client.post("/webhooks/whatsapp", content=body, headers=headers)).is_success
    report = await assert_report_matches(org, announcement)
    assert report["counts"]["read"] == 1

    await org.dispatch()  # Dana again, over SMS
    report = await assert_report_matches(org, announcement)
    assert report["by_channel"]["sms"]["sent"] >= 1

    # Silence on Telegram: sent once more over SMS.
    clock.advance(hours=2)
    assert await fall_back_on_silence(org.ctx) >= 1
    await org.dispatch()
    report = await assert_report_matches(org, announcement)
    assert report["fallback_on_silence"] >= 1 and report["reached_on_fallback"] >= 1

    # Erased with their supporter, the reader still counts (erased_deliveries).
    await org.api("POST", f"/supporters/{reader['id']}/erase", 204)
    report = await assert_report_matches(org, announcement)
    assert report["counts"]["read"] == 1

    # Folding the appended changes (PostgreSQL) and a full recount change nothing.
    async with org.ctx.sessions() as session:
        await fold_count_changes(session)
        await session.commit()
    assert await assert_report_matches(org, announcement) == report
    async with org.ctx.engine.begin() as conn:
        await rebuild_announcement_counts(conn)
    assert await assert_report_matches(org, announcement) == report
