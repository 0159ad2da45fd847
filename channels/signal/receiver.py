"""Reading envelopes from signal-cli-rest-api, which pushes no webhook.

json-rpc mode (`websocket`): GET /v1/receive/{number} upgraded to a websocket that pushes
one envelope per text frame. Envelopes that arrive while no client is connected are lost
to us, so the connection is kept up and a dropped one is opened again at once, then with
a backoff bounded at `max_backoff` while the API stays away.

normal/native mode (`poll`): the same path as a plain GET answers a JSON array of the
envelopes received since, and removes them from the API: they are held here until the
sink has taken them, so a failed store loses nothing; the next try stores them first.

The sink is the same ingestion path webhooks use, idempotent on (channel, provider id):
an envelope handed over twice is stored once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from websockets.asyncio.client import connect as websocket_connect
from websockets.exceptions import ConnectionClosed

from channels.base import MalformedPayload, WebhookEvent
from channels.signal.config import SignalConfig
from channels.signal.envelopes import parse_frame, parse_receive_body

log = logging.getLogger(__name__)

EventSink = Callable[[list[WebhookEvent]], Awaitable[None]]
Sleep = Callable[[float], Awaitable[None]]
Connect = Callable[..., Any]  # websockets.asyncio.client.connect or a stand-in
MAX_FRAME = 4 * 1024 * 1024  # an envelope with attachment metadata is a few KB


class FramesUnlogged(logging.LoggerAdapter):  # type: ignore[type-arg]
    """websockets logs every frame at DEBUG, envelopes (numbers, message text) included:
    this logger never takes DEBUG, so they stay out of the logs at any level setting."""

    def isEnabledFor(self, level: int) -> bool:
        return level > logging.DEBUG and self.logger.isEnabledFor(level)


SOCKET_LOG = FramesUnlogged(logging.getLogger("channels.signal.websocket"))


class SignalReceiver:
    def __init__(
        self,
        config: SignalConfig,
        http_client: httpx.AsyncClient,
        sink: EventSink,
        *,
        sleep: Sleep = asyncio.sleep,
        connect: Connect = websocket_connect,
        max_backoff: float = 30.0,
        retry_seconds: float = 1.0,
        max_store_tries: int = 20,
    ) -> None:
        self.config = config
        self._http = http_client
        self._sink = sink
        self._sleep = sleep
        self._connect = connect
        self.max_backoff = max_backoff
        self.retry_seconds = retry_seconds  # between tries of a failed store, while connected
        self.pending: list[WebhookEvent] = []
        self.max_store_tries = max_store_tries
        self._tries: dict[int, int] = {}  # id() of a pending event -> its failed stores
        self.failures = 0  # consecutive failed connections or polls
        self.stored = 0  # events handed to the sink so far
        self.connected = asyncio.Event()  # set while the websocket is open
        self._progress = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    # Lifecycle (gateway.background.BackgroundService)

    async def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="signal-receiver")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.pending and not await self.flush():
            log.error("signal: %d received events could not be stored", len(self.pending))

    async def run(self) -> None:
        while True:
            try:
                if self.config.receive_mode == "poll":
                    await self.poll_once()
                    await self._sleep(self.config.poll_seconds)
                    continue
                await self.listen()
            except ConnectionClosed:
                log.warning("signal: the receive websocket closed; reconnecting")
                self.failures += 1
            except Exception as exc:  # whatever it was: try again later
                self.failures += 1
                log.warning(
                    "signal: receiving failed (%s); retry %d", type(exc).__name__, self.failures
                )
            await self._sleep(self.backoff())

    def backoff(self) -> float:
        """Seconds before the next try: none after the first failure, then 1, 2, 4, … up
        to `max_backoff`."""
        if self.failures <= 1:
            return 0.0
        return float(min(self.max_backoff, 2 ** (self.failures - 2)))

    # json-rpc mode

    async def listen(self) -> None:
        """Hold the websocket open and hand over each envelope until it closes."""
        async with self._connect(
            self.config.websocket_url, open_timeout=10, max_size=MAX_FRAME, logger=SOCKET_LOG
        ) as socket:
            self.failures = 0
            self.connected.set()
            try:
                while True:
                    # While a store failed, wake up to retry it even if nothing arrives.
                    wait = self.retry_seconds if self.pending else None
                    try:
                        frame = await asyncio.wait_for(socket.recv(), wait)
                    except TimeoutError:
                        await self.flush()
                        continue
                    self.take_frame(frame)
                    await self.flush()
            finally:
                self.connected.clear()

    def take_frame(self, frame: str | bytes) -> None:
        try:
            self.pending.extend(parse_frame(frame, account=self.config.number))
        except MalformedPayload as exc:
            log.warning("signal: a websocket frame skipped: %s", exc)

    # normal mode

    async def poll_once(self) -> int:
        """One GET of the envelopes waiting at the API; how many events it handed over.
        Raises httpx.HTTPError when the API cannot be reached or refuses."""
        await self.flush()  # what an earlier poll could not store goes first
        response = await self._http.get(
            self.config.receive_url, params={"timeout": str(max(1, int(self.config.poll_seconds)))}
        )
        if response.status_code != 200:
            # The error text may name the number: only the status is logged.
            raise httpx.HTTPStatusError(
                f"signal receive answered HTTP {response.status_code}",
                request=response.request,
                response=response,
            )
        self.failures = 0
        try:
            events = parse_receive_body(response.content, account=self.config.number)
        except MalformedPayload as exc:
            log.error(
                "signal: a receive answer could not be read (%s); its envelopes are lost", exc
            )
            return 0
        self.pending.extend(events)
        await self.flush()
        return len(events)

    # Handing over

    async def flush(self) -> bool:
        """Give the pending events to the sink; kept for the next try if it fails. After a
        failed batch they go one by one, so that one event the sink keeps refusing holds
        back no other; it is dropped (and logged) after `max_store_tries`."""
        if not self.pending:
            return True
        batch = list(self.pending)
        try:
            await self._sink(batch)
        except Exception as exc:  # the database and the spool both refused: keep them
            log.error("signal: storing %d events failed (%s)", len(batch), type(exc).__name__)
            if len(batch) == 1:
                self._count_failure(batch[0])
                return False
            for event in batch:
                await self._store_one(event)
            return not self.pending
        del self.pending[: len(batch)]
        await self._stored(len(batch))
        return True

    async def _store_one(self, event: WebhookEvent) -> None:
        try:
            await self._sink([event])
        except Exception:  # counted; kept for the next try until it has had its tries
            self._count_failure(event)
            return
        self.pending.remove(event)
        self._tries.pop(id(event), None)
        await self._stored(1)

    def _count_failure(self, event: WebhookEvent) -> None:
        tries = self._tries.get(id(event), 0) + 1
        if tries < self.max_store_tries:
            self._tries[id(event)] = tries
            return
        self._tries.pop(id(event), None)
        self.pending.remove(event)
        log.error("signal: an envelope dropped after %d failed stores", tries)

    async def _stored(self, count: int) -> None:
        if not self.pending:
            self._tries.clear()
        async with self._progress:
            self.stored += count
            self._progress.notify_all()

    async def wait_stored(self, count: int) -> None:
        """Return once `count` events in all have been handed to the sink."""
        async with self._progress:
            await self._progress.wait_for(lambda: self.stored >= count)
