"""`rallypoint requeue` leaves alone a failed message whose address has opted out since,
with and without encryption at rest (with keys a message holds its address sealed beside
the blind index, the supporter's address holds the index alone)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

from channels.base import InvalidRecipient, RecipientOptedOut
from routing.dispatch.requeue import requeue_failed
from routing.people.consent import record_consent
from storage.models import Supporter
from tests.conftest import FakeClock
from tests.gateway.test_encryption_at_rest import KEY
from tests.routing.fake_adapter import (
    FakeAdapter,
    add_supporter,
    load,
    make_dispatcher,
    outbox_of,
    queue,
    with_adapters,
)


@pytest.mark.parametrize("keys", [None, KEY], ids=["plaintext", "encrypted"])
async def test_requeue_skips_an_address_opted_out_since(
    make_client: Any, clock: FakeClock, keys: str | None
) -> None:
    telegram = FakeAdapter(channels=("telegram",), provider="fake-telegram")
    settings = {"encryption_keys": keys} if keys else {}
    _, ctx = await with_adapters(make_client, telegram, **settings)
    ada = await add_supporter(ctx, {"telegram": "4242"}, name="Ada")
    ben = await add_supporter(ctx, {"telegram": "4343"}, name="Ben")
    since = clock()
    blocked, other = await queue(ctx, ada, "to Ada"), await queue(ctx, ben, "to Ben")
    telegram.fail("4242", RecipientOptedOut("bot was blocked by the user", code="403"))
    telegram.fail("4343", InvalidRecipient("chat not found", code="400"))
    dispatcher = make_dispatcher(ctx, clock)
    while await dispatcher.run_once():
        pass
    assert [(await load(ctx, m)).status for m in (blocked, other)] == ["failed", "failed"]
    async with ctx.sessions() as session:
        if keys:  # the case the opt-out check has to see through
            stored = (
                await session.execute(
                    text("SELECT address FROM supporter_addresses WHERE opted_out")
                )
            ).scalar_one()
            assert stored.startswith("b1:")
        # Ada opts in again (START on another channel): her Telegram chat stays blocked.
        supporter = await session.get(Supporter, ada)
        assert supporter is not None and supporter.opted_out
        await record_consent(session, supporter, "opt_in", now=clock())
        await session.commit()

    clock.advance(minutes=5)
    async with ctx.sessions() as session:
        assert await requeue_failed(session, since=since, now=clock()) == 1
        await session.commit()
    assert (await load(ctx, blocked)).status == "failed"
    assert await outbox_of(ctx, blocked) is None
    assert (await load(ctx, other)).status == "queued"
    assert await outbox_of(ctx, other) is not None
    clock.advance(minutes=5)
    async with ctx.sessions() as session:  # once
        assert await requeue_failed(session, since=since - timedelta(hours=1), now=clock()) == 0
