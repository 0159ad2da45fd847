"""`rallypoint stats` and `rallypoint requeue --failed --since` as processes on the
database a running app uses: messages fail at the Twilio fake through the dispatcher, the
command puts them back in the outbox once, and the dispatcher then sends them."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from channels.twilio.fake import Reply
from tests.conftest import FakeClock
from tests.e2e.harness import Org
from tests.gateway.cli_process import rallypoint

MakeClient = Callable[..., Awaitable[httpx.AsyncClient]]
ADA, BEN, CAL = "+14155550101", "+14155550102", "+14155550103"


async def one_on_one(org: Org, supporter_id: int, body: str) -> int:
    sent = await org.api("POST", f"/supporters/{supporter_id}/messages", 202, json={"body": body})
    return int(sent["id"])


async def status_of(org: Org, message_id: int) -> str:
    return str((await org.api("GET", f"/messages/{message_id}"))["status"])


async def test_requeue_sends_failed_messages_again_once(
    make_client: MakeClient, clock: FakeClock, database_url: str, tmp_path: Path
) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    clock.set(start)
    org = await Org.start(make_client, clock)
    sms = [{"channel": "sms", "address": p} for p in (ADA, BEN, CAL)]
    ada, ben, cal = [
        await org.supporter(name=n, addresses=[a]) for n, a in zip("ABC", sms, strict=True)
    ]
    # Ada's message fails long before --since: it stays failed.
    org.providers.twilio.script(ADA, Reply.error(21211, message="invalid To"))
    early = await one_on_one(org, ada["id"], "early")
    await org.dispatch()
    clock.advance(hours=2)
    since = clock()
    clock.advance(minutes=30)
    org.providers.twilio.script(BEN, Reply.error(21211, message="invalid To"))
    org.providers.twilio.script(CAL, Reply.error(21211, message="invalid To"))
    ben_message = await one_on_one(org, ben["id"], "hello Ben")
    cal_message = await one_on_one(org, cal["id"], "hello Cal")
    await org.dispatch()
    assert [await status_of(org, m) for m in (early, ben_message, cal_message)] == ["failed"] * 3
    # Cal opts out afterwards: nothing is sent to Cal again.
    await org.sms(CAL, "STOP")

    env = {"RALLYPOINT_DATABASE_URL": database_url}
    iso = since.strftime("%Y-%m-%dT%H:%MZ")
    ran = await rallypoint("requeue", "--failed", "--since", iso, cwd=tmp_path, env=env)
    assert ran.code == 0, ran.output
    assert ran.stdout.splitlines() == [
        f"re-queued 1 failed message (failed since {since.isoformat(timespec='minutes')})"
    ]
    again = await rallypoint("requeue", "--failed", "--since", iso, cwd=tmp_path, env=env)
    assert again.stdout.startswith("re-queued 0 failed messages")  # once
    audit = (await org.api("GET", "/audit?action=messages_requeued"))["items"]
    assert [(a["actor"], a["target"]) for a in audit] == [
        ("cli", f"messages failed since {since.replace(second=0).isoformat()}: 1")
    ]

    clock.set(datetime.now(UTC))  # the command queued them at the real time
    assert await status_of(org, ben_message) == "queued"
    await org.dispatch()
    assert org.providers.sms_to(BEN) == ["hello Ben"]
    assert org.providers.sms_to(ADA) == org.providers.sms_to(CAL) == []
    assert [await status_of(org, m) for m in (early, ben_message, cal_message)] == [
        "failed",
        "sent",
        "failed",
    ]


async def test_requeue_needs_failed_and_a_readable_since(tmp_path: Path) -> None:
    env = {"RALLYPOINT_DATABASE_URL": f"sqlite:///{tmp_path / 'r.db'}"}
    bad = await rallypoint("requeue", "--failed", "--since", "last week", cwd=tmp_path, env=env)
    assert (bad.code, bad.stdout) == (2, "")
    assert bad.stderr.splitlines() == [
        "error: rallypoint requeue: argument --since: --since 'last week' is not an ISO 8601 "
        "time (e.g. 2026-12-01T00:00Z) (see rallypoint requeue --help)"
    ]
    missing = await rallypoint("requeue", "--since", "2026-12-01", cwd=tmp_path, env=env)
    assert missing.code == 2
    assert missing.stderr.splitlines() == [
        "error: rallypoint requeue: the following arguments are required: --failed "
        "(see rallypoint requeue --help)"
    ]


async def test_stats_counts_supporters_messages_and_the_outbox(
    make_client: MakeClient, clock: FakeClock, database_url: str, tmp_path: Path
) -> None:
    clock.set(datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30))
    org = await Org.start(make_client, clock)
    ada = await org.supporter(
        name="Ada",
        addresses=[{"channel": "sms", "address": ADA}, {"channel": "telegram", "address": "4242"}],
    )
    await org.supporter(name="Ben", addresses=[{"channel": "sms", "address": BEN}])
    cal = await org.supporter(name="Cal", addresses=[{"channel": "sms", "address": CAL}])
    await org.sms(BEN, "STOP")
    org.providers.twilio.script(CAL, Reply.error(21211, message="invalid To"))
    await one_on_one(org, cal["id"], "fails")
    await org.dispatch()
    await org.sms(CAL, "hi there")  # inbound
    await one_on_one(org, ada["id"], "waits in the outbox")

    env = {"RALLYPOINT_DATABASE_URL": database_url}
    ran = await rallypoint("stats", "--json", cwd=tmp_path, env=env)
    assert ran.code == 0, ran.output
    stats = json.loads(ran.stdout)
    assert stats["supporters"] == {"total": 3, "opted_out": 1}
    assert stats["supporters_by_channel"] == {
        "sms": {"subscribed": 2, "opted_out": 1},
        "telegram": {"subscribed": 1, "opted_out": 0},
    }
    last_24h = stats["messages_last_24h"]
    assert last_24h["outbound failed"] == 1 and last_24h["outbound queued"] == 1
    assert last_24h["inbound received"] == 2  # Ben's STOP, Cal's hi
    assert stats["outbox"]["due"] == 1 and stats["outbox"]["oldest_due_seconds"] >= 0
    text = await rallypoint("stats", cwd=tmp_path, env=env)
    assert text.stdout.splitlines()[:2] == [
        "supporters: 3 (1 opted out)",
        "supporters by channel: sms 2 subscribed / 1 opted out, "
        "telegram 1 subscribed / 0 opted out",
    ]
    assert text.stdout.splitlines()[3].startswith("outbox due: 1, oldest due ")
    for secret in (ADA, BEN, CAL, "hi there", "fails"):
        assert secret not in ran.output + text.output
