"""The Signal receiver on its own: a bounded backoff while the API is away, nothing lost
when a store fails (the poll already removed the envelopes from the API), and an error
answer from the API raises without naming the number."""

from __future__ import annotations

import asyncio
from typing import Any, NoReturn

import httpx
import pytest

from channels.base import WebhookEvent
from channels.signal import SignalConfig
from channels.signal.fake import FakeSignalApi
from channels.signal.receiver import SignalReceiver
from tests.channels.signal_case import API_BASE, NUMBER, SUPPORTER


class StoreOnce:
    """A sink that refuses its first `refusals` batches (a database and spool both down)."""

    def __init__(self, refusals: int = 0) -> None:
        self.refusals = refusals
        self.batches: list[list[WebhookEvent]] = []

    async def __call__(self, events: list[WebhookEvent]) -> None:
        if self.refusals:
            self.refusals -= 1
            raise OSError("no space left on device")
        self.batches.append(events)


class Stop(Exception):
    pass


async def test_reconnects_with_a_bounded_backoff() -> None:
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 8:
            raise Stop

    def refused(*args: Any, **kwargs: Any) -> NoReturn:
        raise ConnectionRefusedError("connection refused")

    async with httpx.AsyncClient() as http:
        receiver = SignalReceiver(
            SignalConfig(API_BASE, NUMBER), http, StoreOnce(), sleep=sleep, connect=refused
        )
        with pytest.raises(Stop):
            await receiver.run()
    # At once, then doubling from 1 s, never over 30 s.
    assert sleeps == [0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


async def test_a_failed_store_keeps_the_polled_envelopes_for_the_next_poll() -> None:
    fake = FakeSignalApi(NUMBER, mode="normal")
    sink = StoreOnce(refusals=1)
    async with httpx.AsyncClient(transport=fake.transport) as http:
        receiver = SignalReceiver(SignalConfig(API_BASE, NUMBER, receive_mode="poll"), http, sink)
        await fake.deliver(fake.text_envelope(SUPPORTER, "one"))
        await receiver.poll_once()
        assert fake.queue == [] and sink.batches == []  # taken from the API, not stored
        assert len(receiver.pending) == 1
        await fake.deliver(fake.text_envelope(SUPPORTER, "two"))
        await receiver.poll_once()
    assert [[e.body for e in batch] for batch in sink.batches] == [["one"], ["two"]]  # type: ignore[union-attr]
    assert receiver.pending == [] and receiver.stored == 2


async def test_stop_stores_what_is_pending() -> None:
    fake = FakeSignalApi(NUMBER, mode="normal")
    sink = StoreOnce(refusals=1)
    async with httpx.AsyncClient(transport=fake.transport) as http:
        receiver = SignalReceiver(SignalConfig(API_BASE, NUMBER, receive_mode="poll"), http, sink)
        await fake.deliver(fake.text_envelope(SUPPORTER, "late"))
        await receiver.poll_once()
        await receiver.stop()
    assert len(sink.batches) == 1 and receiver.pending == []


async def test_an_error_answer_raises_and_counts_as_a_failure() -> None:
    fake = FakeSignalApi(NUMBER, mode="normal")
    async with httpx.AsyncClient(transport=fake.transport) as http:
        other = SignalConfig(API_BASE, "+14155550177", receive_mode="poll")
        receiver = SignalReceiver(other, http, StoreOnce())
        with pytest.raises(httpx.HTTPStatusError) as raised:
            await receiver.poll_once()
    assert "+1415555017" not in str(raised.value)


async def test_the_websocket_waits_for_a_retry_when_a_store_failed() -> None:
    fake = FakeSignalApi(NUMBER)
    sink = StoreOnce(refusals=1)
    async with fake.websocket() as base, httpx.AsyncClient() as http:
        receiver = SignalReceiver(SignalConfig(base, NUMBER), http, sink, retry_seconds=0.01)
        await receiver.start()
        try:
            await asyncio.wait_for(fake.wait_clients(1), 10)
            await fake.deliver(fake.text_envelope(SUPPORTER, "kept"))
            # Refused once; the receiver retries on its own without another frame.
            await asyncio.wait_for(receiver.wait_stored(1), 10)
        finally:
            await receiver.stop()
    assert fake.connections == 1
    assert [e.body for e in sink.batches[0]] == ["kept"]  # type: ignore[union-attr]


class RefusesPoison:
    """A sink that always refuses a batch holding the message "poison" (a bug, not an
    outage): it must hold back nothing else, and is dropped after its tries."""

    def __init__(self) -> None:
        self.stored: list[str] = []

    async def __call__(self, events: list[WebhookEvent]) -> None:
        bodies = [e.body for e in events]  # type: ignore[union-attr]
        if "poison" in bodies:
            raise ValueError("cannot store")
        self.stored.extend(bodies)


async def test_an_event_the_sink_keeps_refusing_holds_back_nothing_else() -> None:
    fake = FakeSignalApi(NUMBER, mode="normal")
    sink = RefusesPoison()
    async with httpx.AsyncClient(transport=fake.transport) as http:
        config = SignalConfig(API_BASE, NUMBER, receive_mode="poll")
        receiver = SignalReceiver(config, http, sink, max_store_tries=3)
        for body in ("before", "poison", "after"):
            await fake.deliver(fake.text_envelope(SUPPORTER, body))
        await receiver.poll_once()
        assert sink.stored == ["before", "after"]
        assert [e.body for e in receiver.pending] == ["poison"]  # type: ignore[union-attr]
        await receiver.poll_once()
        await receiver.poll_once()
    assert receiver.pending == [] and sink.stored == ["before", "after"]
