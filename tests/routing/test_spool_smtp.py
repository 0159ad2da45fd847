"""Inbound mail and the spool, over real SMTP on loopback: mail the database cannot take
in time is spooled and accepted (250), then stored; if the spool cannot take it either,
the sending server hears 451 and keeps the mail to retry."""

from __future__ import annotations

from pathlib import Path

import aiosmtplib
import pytest

from storage.models import Message
from tests.channels.test_email_listener import eml, start_inbox
from tests.conftest import PG_URL
from tests.routing.spool_case import ClientFactory, eventually, lock_sqlite, release

pytestmark = pytest.mark.skipif(bool(PG_URL), reason="holds the SQLite write lock")


async def test_mail_is_spooled_while_the_database_is_locked(
    make_client: ClientFactory, database_url: str, tmp_path: Path
) -> None:
    inbox, listener = await start_inbox(make_client, spool_after_ms=150)
    try:
        lock = lock_sqlite(database_url)
        try:
            await inbox.deliver(eml("plain.eml"))  # raises unless the answer is 250
            assert any((tmp_path / "spool").glob("*.spool"))
            await inbox.deliver(eml("plain.eml"))  # the sender's retry: stored once
        finally:
            release(lock)

        async def stored_once() -> bool:
            return [m.address for m in await inbox.messages()] == ["amina.otieno@example.com"]

        await eventually(stored_once)
        [message] = await inbox.messages()
        assert message.body.startswith("Hi team,") and message.channel == "email"
        assert await inbox.count(Message) == 1
    finally:
        await listener.stop()


async def test_mail_gets_451_when_neither_database_nor_spool_can_take_it(
    make_client: ClientFactory, database_url: str, tmp_path: Path
) -> None:
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the spool directory should be")
    inbox, listener = await start_inbox(
        make_client, spool_after_ms=150, spool_dir=str(blocked / "spool")
    )
    try:
        lock = lock_sqlite(database_url)
        try:
            with pytest.raises(aiosmtplib.SMTPDataError) as refused:
                await inbox.deliver(eml("plain.eml"))
            assert refused.value.code == 451
        finally:
            release(lock)

        async def retried() -> bool:  # as the sending server does, until it hears 250
            try:
                await inbox.deliver(eml("plain.eml"))
            except aiosmtplib.SMTPDataError as exc:
                assert exc.code == 451
                return False
            return True

        await eventually(retried)
        assert [m.address for m in await inbox.messages()] == ["amina.otieno@example.com"]
    finally:
        await listener.stop()
