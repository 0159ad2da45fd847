"""Group commit: concurrent callers queue items, one writer task writes them in batches.

Each caller resumes once the batch holding its item is written (committed), with that
item's result or its own error. Webhook ingestion and the dispatcher's send results both
use it: one transaction for many callers instead of one each.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

# What the writer returns for each item, in order: its result, or the error it met.
BatchWriter = Callable[[list[Item]], Awaitable[Sequence[Result | BaseException]]]


class GroupCommit(Generic[Item, Result]):
    def __init__(self, write: BatchWriter[Item, Result], *, max_batch: int, name: str) -> None:
        self._write = write
        self.max_batch = max_batch
        self.name = name
        self._queue: list[tuple[Item, asyncio.Future[Result]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Result:
        """Queue `item`; returns its result once its batch is written."""
        return await self.enqueue(item)

    async def submit_many(self, items: Sequence[Item]) -> list[Result]:
        futures = [self.enqueue(item) for item in items]
        return list(await asyncio.gather(*futures))

    def enqueue(self, item: Item) -> asyncio.Future[Result]:
        """Queue `item`; the future of its result. Cancelling the future does not take the
        item back: it is written with its batch all the same."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain(), name=self.name)
        return future

    async def aclose(self) -> None:
        """Wait for the batch in flight (the queue empties itself)."""
        if self._writer is not None:
            await asyncio.wait([self._writer], timeout=30)

    async def _drain(self) -> None:
        while self._queue:
            batch = self._queue[: self.max_batch]
            del self._queue[: self.max_batch]
            try:
                results = await self._write([item for item, _ in batch])
            except BaseException as exc:  # never leave a caller waiting forever
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise  # cancellation and the like end the writer
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)
