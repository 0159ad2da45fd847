"""Signal's send contract rig, and helpers its tests share (signal-cli-rest-api has no
webhook: envelopes come from its receive endpoint, see test_signal_e2e.py)."""

from __future__ import annotations

import json
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

from channels.base import (
    ChannelAdapter,
    ChannelMisconfigured,
    InvalidRecipient,
    OutboundMessage,
    ProviderUnavailable,
    SendError,
    Throttled,
)
from channels.registry import ChannelConfigs
from channels.signal import SignalConfig
from channels.signal.fake import FakeSignalApi
from tests.channels.send_contract import SendCase, registered

TESTDATA = Path(__file__).resolve().parents[2] / "channels" / "signal" / "testdata"
NUMBER = "+14155550123"  # the registered account Rallypoint sends as
API_BASE = "http://signal-api.test:8080"
SUPPORTER = "+254712345678"
SETTINGS: dict[str, Any] = {"signal_api_base": API_BASE, "signal_number": NUMBER}


def load(name: str) -> dict[str, Any]:
    return json.loads((TESTDATA / f"{name}.json").read_text())  # type: ignore[no-any-return]


# The send contract (tests/channels/send_contract.py): the API's answers at the wire, as
# FakeSignalApi.fail names them.
SEND_CASES: list[SendCase[str | None]] = [
    SendCase("201 with a timestamp", None, result_id=r"17726364\d{5}"),
    SendCase("429 rate limit challenge", "rate_limit", Throttled, "429"),
    SendCase("connection refused", "connect_error", ProviderUnavailable, "network"),
    SendCase("read timeout", "timeout", ProviderUnavailable, "timeout"),
    SendCase("500", "internal_error", ProviderUnavailable, "500"),
    SendCase("502 from a proxy", "bad_gateway", ProviderUnavailable, "502"),
    SendCase("400 unregistered user", "unregistered", InvalidRecipient, "unregistered"),
    SendCase(
        "201 with an unregistered recipient",
        "unregistered_result",
        InvalidRecipient,
        "UNREGISTERED_FAILURE",
    ),
    SendCase(
        "400 our number not registered",
        "account_unregistered",
        ChannelMisconfigured,
        "unregistered",
    ),
    SendCase("400 untrusted identity", "identity", SendError, "identity"),
    SendCase("400 other", "bad_request", SendError, "400"),
    SendCase("404 not the API", "not_found", ChannelMisconfigured, "404"),
    SendCase("201 without a timestamp", "garbage_201", SendError, "unreadable"),
]


class SignalSendRig:
    provider = "signal"
    # No credential: the numbers are what must stay out of logs and errors.
    secrets = (NUMBER, SUPPORTER)
    cases = SEND_CASES

    def message(self) -> OutboundMessage:
        return OutboundMessage(1, "signal", SUPPORTER, "Banner drop at 6: the secret plan")

    def open(self, answer: str | None) -> AbstractAsyncContextManager[ChannelAdapter]:
        fake = FakeSignalApi(NUMBER)
        if answer is not None:
            fake.fail(SUPPORTER, answer)
        config = SignalConfig(API_BASE, NUMBER)
        return registered(ChannelConfigs(signal=config), "signal", fake.transport)
