"""Several dispatchers at once share the outbox and send each message exactly once.

Runs on SQLite (one writer) and, with RALLYPOINT_TEST_DATABASE_URL, on PostgreSQL, where
claiming uses FOR UPDATE SKIP LOCKED.
"""

from __future__ import annotations

import asyncio
from collections import Counter

from tests.conftest import PG_URL, FakeClock
from tests.routing.fake_adapter import (
    FakeAdapter,
    add_supporter,
    load,
    make_dispatcher,
    queue,
    with_adapters,
)

N = 120 if PG_URL else 60


async def test_three_dispatchers_send_each_message_once(make_client, clock: FakeClock) -> None:
    sms = FakeAdapter(channels=("sms",), provider="fake-sms")
    _, ctx = await with_adapters(make_client, sms)
    ids = []
    for n in range(N):
        sid = await add_supporter(ctx, {"sms": f"+1415555{n:04d}"}, name=f"S{n}")
        ids.append(await queue(ctx, sid, f"m{n}"))
    dispatchers = [make_dispatcher(ctx, clock, owner=f"d{k}", concurrency=8) for k in range(3)]
    done: Counter[str] = Counter()

    async def drain(d) -> None:  # type: ignore[no-untyped-def]
        while count := await d.run_once():
            done[d.owner] += count

    await asyncio.wait_for(asyncio.gather(*(drain(d) for d in dispatchers)), 60)

    assert sum(done.values()) == N
    per_address = Counter(m.to for _, m in sms.accepted)
    assert len(per_address) == N and set(per_address.values()) == {1}
    statuses = Counter([(await load(ctx, i)).status for i in ids])
    assert statuses == {"sent": N}
