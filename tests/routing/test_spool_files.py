"""Spool files between processes (storage/spool.py) and the events they hold
(routing/inbound/spool_codec.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from channels.base import (
    SEND_ERRORS,
    Attachment,
    ChannelOptOut,
    InboundMessage,
    StatusUpdate,
    Throttled,
    WindowClosed,
)
from routing.inbound.spool_codec import UnreadableRecord, decode_events, encode_events
from storage.spool import SpoolWriter, claim, claim_all, spool_files, spool_stats

WHEN = datetime(2026, 3, 4, 15, 0, 1, 250000, tzinfo=UTC)
EVENTS = [
    InboundMessage(
        channel="email",
        address="amina@example.org",
        provider_message_id="<m1@example.org>",
        body="STOP\nline two \u2603 \U0001f600 \ud800",
        received_at=WHEN,
        attachments=(Attachment("image/png", "https://x.test/a", "m1", "a.png", 12),),
        profile_name="Amina",
        raw='{"raw": "payload\\n"}',
        subject="Re: Saturday",
        email_message_id="<m1@example.org>",
        in_reply_to="<out-1@rally.example.org>",
        references="<out-1@rally.example.org>",
        start_payload="link-abc",
        sender_verified=False,
    ),
    StatusUpdate(
        channel="whatsapp",
        provider_message_id="wamid.1",
        status="failed",
        error_code="131047",
        error_message="Re-engagement message",
        occurred_at=WHEN,
        raw="{}",
        failure=WindowClosed("window closed", code="131047"),
        recipients=("+254712345678",),
    ),
    StatusUpdate(
        channel="sms",
        provider_message_id="SM1",
        status="undelivered",
        failure=Throttled("slow down", code="20429", retry_after=1.5),
    ),
    ChannelOptOut(
        channel="telegram",
        address="12345",
        reason="blocked",
        provider_event_id="u-1",
        opted_out=False,
    ),
]


def comparable(event: Any) -> dict[str, Any]:
    values = {f.name: getattr(event, f.name) for f in fields(event)}
    failure = values.pop("failure", None)
    if failure is not None:
        values["failure"] = (type(failure), str(failure), failure.code)
        values["retry_after"] = getattr(failure, "retry_after", None)
    return values


def test_every_field_of_every_event_type_survives_the_spool() -> None:
    # For each event type, one of EVENTS sets every field to something other than its
    # default, so a field the codec forgets fails this test.
    for cls in (InboundMessage, StatusUpdate, ChannelOptOut):
        assert any(
            all(getattr(e, f.name) != f.default for f in fields(cls))
            for e in EVENTS
            if type(e) is cls
        ), cls
    payload = encode_events(EVENTS, "twilio/status")
    assert b"\n" not in payload
    source, events = decode_events(payload)
    assert source == "twilio/status"
    assert [comparable(e) for e in events] == [comparable(e) for e in EVENTS]
    assert set(SEND_ERRORS) >= {
        type(e.failure).__name__ for e in events if hasattr(e, "failure") and e.failure
    }


@pytest.mark.parametrize("payload", [b"", b"{}", b"[1]", b'{"source":"x","events":[{"type":"?"}]}'])
def test_a_payload_it_did_not_write_is_unreadable(payload: bytes) -> None:
    with pytest.raises(UnreadableRecord):
        decode_events(payload)


def test_a_live_writer_file_is_never_claimed_and_a_closed_one_once(tmp_path: Path) -> None:
    writer = SpoolWriter(tmp_path)
    writer.append(b'{"n":1}', 10)
    writer.append(b'{"n":2}', 11)
    assert claim_all(tmp_path) == []  # its writer holds it
    assert spool_stats(tmp_path).records == 2 and spool_stats(tmp_path).oldest_ms == 10
    writer.close()
    [first] = claim_all(tmp_path)
    assert [r.payload for r in first.records] == [b'{"n":1}', b'{"n":2}']
    assert claim_all(tmp_path) == []  # a second replayer does not get it
    path = first.path
    first.finish()
    assert not path.exists() and claim(path) is None and spool_files(tmp_path) == []


def test_another_process_cannot_claim_a_live_file(tmp_path: Path) -> None:
    # A writer in a child process keeps its file until told to stop.
    script = (
        "import sys; from pathlib import Path; from storage.spool import SpoolWriter\n"
        "w = SpoolWriter(Path(sys.argv[1])); w.append(b'{}', 1); print('ready', flush=True)\n"
        "sys.stdin.readline(); w.close()\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
        assert claim_all(tmp_path) == []
    finally:
        assert child.stdin is not None
        child.stdin.write("\n")
        child.stdin.flush()
        assert child.wait(timeout=10) == 0
    [claimed] = claim_all(tmp_path)  # the writer is gone: its file is ours
    assert len(claimed.records) == 1
    claimed.finish()
