"""The webhook spool under RALLYPOINT_ENCRYPTION_KEYS: each record on disk is sealed (no
body or number in the raw file), replay opens it, records written without keys replay
too, and a record that does not open is set aside, never stored altered."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime
from pathlib import Path

import pytest

from channels.base import InboundMessage
from routing.inbound.spool import spool_for
from routing.inbound.spool_codec import encode_events
from storage.crypto import Crypto, install
from storage.spool import (
    SealedRecordError,
    SpoolRecord,
    SpoolWriter,
    now_ms,
    open_payload,
    seal_payload,
)
from tests.channels.twilio_case import SETTINGS
from tests.conftest import PG_URL
from tests.routing.spool_case import (
    PHONE,
    ClientFactory,
    eventually,
    inbound,
    lock_sqlite,
    post_sms,
    release,
    sid,
    spooled_records,
)

KEY = base64.b64encode(bytes(range(32))).decode()
FAST = {**SETTINGS, "spool_after_ms": 150}
BODY = "SAFFRON-OTTER-6618 meet at the depot"
OLD_BODY = "UMBER-LYNX-3307 written before keys"


def _message(n: int, body: str, address: str = PHONE) -> InboundMessage:
    return InboundMessage(
        channel="sms",
        address=address,
        provider_message_id=sid(n),
        body=body,
        received_at=datetime(2026, 12, 8, tzinfo=UTC),
        raw=f"Body={body}&From={address}",
    )


def _spool_bytes(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file())


async def test_records_are_sealed_on_disk_and_replayed(
    make_client: ClientFactory, tmp_path: Path
) -> None:
    client = await make_client(**SETTINGS, encryption_keys=KEY)
    spool_dir = tmp_path / "spool"
    # A record a process left before keys were set: replayed as it is.
    old = SpoolWriter(spool_dir)
    old.append(encode_events([_message(1, OLD_BODY, "+254700000001")], "twilio/sms"), now_ms())
    old.close()
    spool = spool_for(client.ctx)  # type: ignore[attr-defined]
    await spool.append([_message(2, BODY)], "twilio/sms", "a test")
    # Read before the replay task has run: the new record is sealed, the old one is not.
    data = _spool_bytes(spool_dir)
    assert OLD_BODY.encode() in data
    for secret in (BODY, PHONE, PHONE[1:], "depot"):
        assert secret.encode() not in data, secret
    assert data.count(b" e1:") == 1

    async def stored() -> bool:
        return len(await inbound(client)) == 2 and spooled_records(spool_dir) == 0

    await eventually(stored)
    assert sorted(body for _, body in await inbound(client)) == sorted([BODY, OLD_BODY])


@pytest.mark.skipif(bool(PG_URL), reason="holds the SQLite write lock")
async def test_a_webhook_spooled_while_the_database_is_locked_is_sealed(
    make_client: ClientFactory, database_url: str, tmp_path: Path
) -> None:
    client = await make_client(**FAST, encryption_keys=KEY)
    spool_dir = tmp_path / "spool"
    lock = lock_sqlite(database_url)
    try:
        answer = await asyncio.wait_for(post_sms(client, 7, BODY), 5)
        assert answer.status_code == 200, answer.text
        assert spooled_records(spool_dir) == 1
        data = _spool_bytes(spool_dir)
        for secret in (BODY, PHONE[1:], "depot"):
            assert secret.encode() not in data, secret
    finally:
        release(lock)

    async def stored() -> bool:
        return await inbound(client) == [(sid(7), BODY)] and spooled_records(spool_dir) == 0

    await eventually(stored)


def test_a_sealed_record_opens_only_at_its_own_arrival_time_and_key() -> None:
    install(Crypto([base64.b64decode(KEY)], b"i" * 32))
    try:
        sealed = seal_payload(b'{"source":"x","events":[]}', 1000)
        assert sealed.startswith(b"e1:") and b"source" not in sealed
        assert open_payload(SpoolRecord(1000, sealed)) == b'{"source":"x","events":[]}'
        with pytest.raises(SealedRecordError):
            open_payload(SpoolRecord(1001, sealed))  # moved to another record's time
        install(Crypto([bytes(32)], b"i" * 32))
        with pytest.raises(SealedRecordError):
            open_payload(SpoolRecord(1000, sealed))  # a key that did not seal it
        install(None)
        with pytest.raises(SealedRecordError):
            open_payload(SpoolRecord(1000, sealed))
        assert seal_payload(b"{}", 5) == b"{}"  # without keys: as before
    finally:
        install(None)
