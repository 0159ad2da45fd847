"""Benchmark: IMAP ingest of 10,000 waiting mails from a real Dovecot on loopback.

The mails (replies with a quoted message, from 1,000 supporters) are written straight
into the mailbox's Maildir, and Dovecot indexes them once before anything is timed. The
baseline is a raw fetch of the same mails, in the same batches, with IMAPClient and
nothing else (no parsing, no storing, nothing moved); the figure is the real reader
(gateway/imap_poller.py) taking every mail through parsing, reply stripping, storing in
SQLite and the move to the processed mailbox. Target: at least 200 mails/s.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from pathlib import Path

from imapclient import IMAPClient

from bench import seed
from bench.report import Figure, Report

MAILS = 10_000
SUPPORTERS = 1_000
BATCH = 200
TARGET = 200.0  # mails per second
TIMEOUT = 600.0


def mail(i: int) -> bytes:
    sender = f"supporter{i % SUPPORTERS}@example.net"
    return (
        f"Return-Path: <{sender}>\r\nFrom: Supporter {i % SUPPORTERS} <{sender}>\r\n"
        f"To: team@rally.example.org\r\nSubject: Re: Saturday canvass\r\n"
        f"Date: Mon, 7 Dec 2026 10:{i % 60:02d}:00 +0000\r\n"
        f"Message-ID: <bench-{i}@example.net>\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"\r\nYes, count me in for Saturday ({i}).\r\n\r\n"
        "On Mon, Dec 7, 2026 at 10:00 AM Rally Team <team@rally.example.org> wrote:\r\n"
        "> Can you canvass Saturday?\r\n> Reply STOP to stop messages.\r\n"
    ).encode()


def fill_maildir(maildir: Path, owner: tuple[int, int]) -> None:
    new = maildir / "new"
    for i in range(MAILS):
        path = new / f"{1_700_000_000 + i}.M{i}P1.bench"
        path.write_bytes(mail(i))
        os.chown(path, *owner)


def raw_fetch(port: int, user: str, password: str) -> float:
    """Seconds to search and fetch every mail, read-only, as the reader batches them."""
    client = IMAPClient("127.0.0.1", port=port, ssl=False, timeout=60)
    client.login(user, password)
    try:
        client.select_folder("INBOX", readonly=True)
        start = time.perf_counter()
        uids = sorted(client.search(["UNDELETED"]))
        fetched = 0
        for first in range(0, len(uids), BATCH):
            found = client.fetch(uids[first : first + BATCH], ["BODY.PEEK[]"])
            fetched += sum(1 for item in found.values() if item.get(b"BODY[]"))
        elapsed = time.perf_counter() - start
    finally:
        client.logout()
    if fetched != MAILS:
        raise RuntimeError(f"raw fetch saw {fetched} mails, not {MAILS}")
    return elapsed


async def reader(db: Path, port: int, user: str, password: str) -> float:
    """Seconds for the real reader to store and move every mail."""
    from gateway.app import build_context, shutdown
    from gateway.background import imap_poller
    from gateway.imap_poller import ImapPoller
    from gateway.settings import Settings

    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url=f"sqlite:///{db}",
        spool_dir=str(db.parent / "spool"),
        spool_after_ms=60_000,  # every mail stored, not spooled, when the timer stops
        imap_host="127.0.0.1",
        imap_port=port,
        imap_username=user,
        imap_password=password,
        imap_tls=False,
        imap_poll_seconds=3600,
    )
    ctx = build_context(settings)
    poller = imap_poller(ctx)
    assert isinstance(poller, ImapPoller)
    start = time.perf_counter()
    await poller.start()
    try:
        await asyncio.wait_for(poller.wait_processed(MAILS), TIMEOUT)
        elapsed = time.perf_counter() - start
    finally:
        await poller.stop()
        await shutdown(ctx)
    stored = seed.count(db, "SELECT count(*) FROM messages WHERE direction = 'inbound'")
    if stored != MAILS:
        raise RuntimeError(f"the reader stored {stored} messages, not {MAILS}")
    return elapsed


def run(report: Report, work: Path) -> None:
    from channels.email.dovecot import Dovecot, dovecot_available

    if not dovecot_available():
        report.notes.append(
            "imap: not run, Dovecot is not installed (apt-get install dovecot-imapd)"
        )
        print("imap: Dovecot is not installed", flush=True)
        return
    server = Dovecot()
    server.start()
    try:
        maildir = server.maildir()
        stat = maildir.stat()
        fill_maildir(maildir, (stat.st_uid, stat.st_gid))
        # Dovecot indexes the new mails on the first SELECT: not part of either figure.
        raw_fetch(server.port, server.user, server.password)
        baseline = raw_fetch(server.port, server.user, server.password)
        db = work / "imap.db"
        seed.migrate(db)
        elapsed = asyncio.run(reader(db, server.port, server.user, server.password))
    finally:
        server.stop()
        shutil.rmtree(work / "spool", ignore_errors=True)
    rate, base_rate = MAILS / elapsed, MAILS / baseline
    report.add(
        Figure(
            "imap",
            f"ingest {MAILS:,} waiting mails",
            rate,
            "mail/s",
            base_rate,
            "raw fetch",
            f">= {TARGET:.0f} mail/s",
            rate >= TARGET,
            f"{elapsed:.1f} s; raw fetch {baseline:.1f} s",
        )
    )
