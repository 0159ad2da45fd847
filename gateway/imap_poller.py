"""Inbound mail from a hosted mailbox (IMAP_HOST): the background loop `serve` runs.

Each waiting mail goes through the same path as mail the SMTP listener accepts
(channels/email/inbound.read_mail, then the spool and ingestion), and only once it is
stored (or spooled) is it moved out of the waiting set. A crash between the two leaves it
waiting: it is fetched again and ingestion, idempotent on the Message-ID (or a digest of
the bytes), stores nothing twice. A lost connection is reopened after a bounded
exponential backoff. Between rounds the loop waits in IDLE where the server offers it
(new mail arrives at once), else IMAP_POLL_SECONDS.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from channels.base import InboundMessage, StatusUpdate
from channels.email.imap import FetchedMail, ImapError, ImapMailbox, LoginError
from channels.email.imap_config import ImapConfig
from channels.email.inbound import CheckLater, Unreadable, UnusableSender, read_mail
from channels.email.sender_auth import SenderAuth

log = logging.getLogger(__name__)

Events = list[InboundMessage | StatusUpdate]
StoreEvents = Callable[[Events], Awaitable[None]]

BATCH = 200  # mails fetched and stored together
MOVE_BATCH = 2000  # stored mails moved out of the mailbox together
BACKOFF_FIRST = 1.0
BACKOFF_MAX = 300.0
STOP_TIMEOUT = 10.0
LOGIN_REFUSED = "login refused: check IMAP_USERNAME and IMAP_PASSWORD (an app password?)"


class ImapPoller:
    """A background service (start/stop) reading `config.mailbox` until stopped."""

    def __init__(
        self,
        config: ImapConfig,
        store: StoreEvents,
        *,
        sender_auth: SenderAuth | None = None,
        batch: int = BATCH,
        move_batch: int = MOVE_BATCH,
        backoff_first: float = BACKOFF_FIRST,
        backoff_max: float = BACKOFF_MAX,
    ) -> None:
        self.config = config
        self.store = store
        self.sender_auth = sender_auth or SenderAuth()
        self.batch = batch
        self.move_batch = move_batch
        self.backoff_first = backoff_first
        self.backoff_max = backoff_max
        self.processed = 0  # mails taken out of the mailbox since start
        self.connections = 0  # sessions opened since start
        self.failures = 0  # sessions lost or refused since start
        self.idling = asyncio.Event()  # set while the session waits in IDLE
        self._progress = asyncio.Condition()
        self._stopping = asyncio.Event()
        self._mailbox: ImapMailbox | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name="imap-poller")
        log.info(
            "imap: reading a mailbox every %s s (IDLE where offered)", self.config.poll_seconds
        )

    async def stop(self) -> None:
        self._stopping.set()
        mailbox, task, self._task = self._mailbox, self._task, None
        if mailbox is not None:
            mailbox.interrupt()  # a thread blocked in IDLE returns at once
        if task is not None:
            try:
                await asyncio.wait_for(task, STOP_TIMEOUT)
            except TimeoutError:
                log.warning("imap: the poller did not stop in time")

    async def wait_processed(self, count: int) -> None:
        """Return once `count` mails were processed since start (tests and benchmarks)."""
        async with self._progress:
            await self._progress.wait_for(lambda: self.processed >= count)

    async def wait_failures(self, count: int) -> None:
        """Return once `count` sessions were lost or refused since start."""
        async with self._progress:
            await self._progress.wait_for(lambda: self.failures >= count)

    async def _run(self) -> None:
        delay = self.backoff_first
        while not self._stopping.is_set():
            mailbox = ImapMailbox(self.config)
            self._mailbox = mailbox
            try:
                await asyncio.to_thread(mailbox.open)
                self.connections += 1
                delay = self.backoff_first
                await self._serve(mailbox)
            except ImapError as exc:
                if self._stopping.is_set():
                    break
                await self._failed()
                # The exception's text may quote the server; its type says enough.
                why = LOGIN_REFUSED if isinstance(exc, LoginError) else type(exc).__name__
                log.warning("imap: session lost (%s); reconnecting in %.1f s", why, delay)
                await self._pause(delay)
                delay = min(delay * 2, self.backoff_max)
            except Exception:
                if self._stopping.is_set():
                    break
                await self._failed()
                log.exception("imap: processing failed; retrying in %.1f s", delay)
                await self._pause(delay)
                delay = min(delay * 2, self.backoff_max)
            finally:
                self.idling.clear()
                self._mailbox = None
                await asyncio.to_thread(mailbox.close)

    async def _pause(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            pass

    async def _serve(self, mailbox: ImapMailbox) -> None:
        while not self._stopping.is_set():
            await self._drain(mailbox)
            if self._stopping.is_set():
                return
            if mailbox.supports_idle:
                await asyncio.to_thread(mailbox.idle_start)
                self.idling.set()
                try:
                    await asyncio.to_thread(mailbox.idle_wait, self.config.poll_seconds)
                finally:
                    self.idling.clear()
            else:
                await self._pause(self.config.poll_seconds)

    async def _drain(self, mailbox: ImapMailbox) -> None:
        """Process everything waiting, a batch at a time; mail whose sender check must wait
        stays for the next round. Stored mail is moved a few batches at a time (a move
        costs the server about as much for one mail as for thousands); until then it is
        still waiting, and read again after a crash, ingestion storing nothing twice."""
        deferred: set[int] = set()
        while not self._stopping.is_set():
            uids = [uid for uid in await asyncio.to_thread(mailbox.waiting) if uid not in deferred]
            if not uids:
                return
            chunks = [uids[i : i + self.batch] for i in range(0, len(uids), self.batch)]
            stored: list[int] = []
            # The next batch is fetched (a thread, and the server) while this one is read
            # and stored (the event loop, and the database's thread); the session runs one
            # command at a time, so a move waits for the fetch in flight.
            fetching = self._fetch(mailbox, chunks[0])
            try:
                for index in range(len(chunks)):
                    mails = await fetching
                    if index + 1 < len(chunks) and not self._stopping.is_set():
                        fetching = self._fetch(mailbox, chunks[index + 1])
                    stored += await self._ingest(mails, deferred)
                    if len(stored) >= self.move_batch:
                        await asyncio.wait((fetching,))
                        await self._mark(mailbox, stored)
                        stored = []
                    if self._stopping.is_set():
                        return
            finally:
                await asyncio.wait((fetching,))
                if not fetching.cancelled():
                    fetching.exception()  # retrieved: a failed prefetch is no loose end
                if stored:
                    await self._mark(mailbox, stored)

    def _fetch(self, mailbox: ImapMailbox, uids: list[int]) -> asyncio.Future[list[FetchedMail]]:
        return asyncio.ensure_future(asyncio.to_thread(mailbox.fetch, uids))

    async def _mark(self, mailbox: ImapMailbox, uids: list[int]) -> None:
        await asyncio.to_thread(mailbox.mark_processed, uids)
        await self._count(len(uids))

    async def _ingest(self, mails: Sequence[FetchedMail], deferred: set[int]) -> list[int]:
        """Store what `mails` carry, in one go; the UIDs that may now leave the mailbox."""
        read: list[tuple[int, Events]] = []
        for mail in mails:
            try:
                read.append(
                    (mail.uid, await read_mail(mail.raw, mail.envelope_from, self.sender_auth))
                )
            except CheckLater as exc:
                log.warning("imap: sender check deferred (%s); the mail waits", exc)
                deferred.add(mail.uid)
            except (UnusableSender, Unreadable) as exc:
                # It never will be readable: moved with the rest, for a person to look at.
                log.warning("imap: a mail could not be read (%s); moved unprocessed", exc)
                read.append((mail.uid, []))
        events = [event for _, found in read for event in found]
        try:
            if events:
                await self.store(events)
        except Exception:
            if len(read) == 1:
                raise  # nothing is moved; the session starts again after a pause
            # One mail the store refuses must not hold back the others: one at a time.
            return await self._ingest_each(read, deferred)
        return [uid for uid, _ in read]

    async def _ingest_each(self, read: list[tuple[int, Events]], deferred: set[int]) -> list[int]:
        done: list[int] = []
        for uid, events in read:
            try:
                if events:
                    await self.store(events)
            except Exception:
                log.exception("imap: storing a mail failed; it waits for the next round")
                deferred.add(uid)
                continue
            done.append(uid)
        return done

    async def _failed(self) -> None:
        async with self._progress:
            self.failures += 1
            self._progress.notify_all()

    async def _count(self, count: int) -> None:
        async with self._progress:
            self.processed += count
            self._progress.notify_all()
