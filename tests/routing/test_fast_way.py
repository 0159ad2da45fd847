"""Which requests of a webhook batch take the set-based way (routing/inbound/fast_way.py):
a pure decision, checked table-driven, and the switch that turns the SQLite lane off."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from channels.base import (
    ChannelOptOut,
    InboundMessage,
    InvalidRecipient,
    StatusUpdate,
    WebhookEvent,
)
from gateway.app import build_context, shutdown
from gateway.settings import Settings
from routing.inbound.batch import IngestBatcher
from routing.inbound.fast_way import Known, fast_requests
from tests.conftest import PG_URL, FakeClock, make_settings

ADA = "+14155550001"  # known: supporter 1 (sms)
BO = "+14155550002"  # known: supporter 2 on whatsapp only
KNOWN: Known = {("sms", ADA): (11, 1), ("whatsapp", BO): (12, 2)}
ATTEMPTS = {("sms", "SMout")}
SETTINGS = make_settings("sqlite://")


def sms(frm: str, body: str = "hello", sid: str = "", **extra: object) -> InboundMessage:
    return InboundMessage("sms", frm, sid or f"SM{frm}{body}", body, **extra)  # type: ignore[arg-type]


def status(sid: str = "SMout", value: str = "delivered", **extra: object) -> StatusUpdate:
    return StatusUpdate("sms", sid, value, **extra)  # type: ignore[arg-type]


@dataclass
class Case:
    name: str
    requests: list[list[WebhookEvent]]
    fast: list[bool]
    awaited: set[int] = field(default_factory=set)


CASES = [
    Case(
        "plain messages from known and new people", [[sms(ADA)], [sms("+1415555999")]], [True, True]
    ),
    Case("a phone known on whatsapp writing by sms", [[sms(BO)]], [True]),
    Case("a consent keyword", [[sms(ADA, "STOP")], [sms("+1415555999")]], [False, True]),
    Case("the join keyword", [[sms("+1415555999", "join")]], [False]),
    Case("someone an automation waits on", [[sms(ADA, "Grace")]], [False], awaited={1}),
    Case("the wait is per supporter", [[sms(ADA)], [sms(BO)]], [True, False], awaited={2}),
    Case(
        "a person's later plain message waits behind their keyword",
        [[sms(ADA, "hi")], [sms(ADA, "STOP")], [sms(ADA, "still there?")]],
        [False, False, False],
    ),
    Case(
        "a request is left whole with its slow part",
        [[sms("+1415555999"), sms(ADA, "HELP")], [sms("+1415555999", "again")]],
        [False, False],
    ),
    Case("a sender the channel could not verify", [[sms(ADA, sender_verified=False)]], [False]),
    Case("a Telegram deep link", [[sms(ADA, start_payload="tok")]], [False]),
    Case("plain progress on a known attempt", [[status()], [status(value="read")]], [True, True]),
    Case("an unknown attempt", [[status("SMnobody")]], [False]),
    Case(
        "an error to act on, and the attempt's later callbacks",
        [[status(value="failed", failure=InvalidRecipient("x"))], [status(value="read")]],
        [False, False],
    ),
    Case("an error code alone", [[status(value="failed", error_code="30006")]], [False]),
    Case("a channel opt-out", [[ChannelOptOut("sms", ADA, "blocked")], [sms(ADA)]], [False, True]),
    Case(
        "a request touching a slow attempt takes its message along",
        [[status("SMnobody"), sms(ADA)], [sms(ADA, "later")]],
        [False, False],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_which_requests_take_the_fast_way(case: Case) -> None:
    assert fast_requests(case.requests, KNOWN, case.awaited, ATTEMPTS, SETTINGS) == case.fast


@pytest.mark.skipif(bool(PG_URL), reason="the lane is SQLite's own")
@pytest.mark.parametrize(("value", "has_lane"), [(None, True), ("true", True), ("false", False)])
async def test_rallypoint_sqlite_lane_turns_the_lane_off(
    value: str | None,
    has_lane: bool,
    database_url: str,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RALLYPOINT_DATABASE_URL", database_url)
    if value is None:
        monkeypatch.delenv("RALLYPOINT_SQLITE_LANE", raising=False)
    else:
        monkeypatch.setenv("RALLYPOINT_SQLITE_LANE", value)
    ctx = build_context(Settings(), clock=clock)
    batcher = IngestBatcher(ctx)
    try:
        report = await batcher.submit([sms(ADA)])
    finally:
        await batcher.aclose()
        await shutdown(ctx)
    assert len(report.stored) == 1
    assert batcher.lane_batches == (1 if has_lane else 0)
