"""What the Signal adapter and receiver need to know, built by whoever reads the environment."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote

ReceiveMode = Literal["websocket", "poll"]


@dataclass(frozen=True)
class SignalConfig:
    """signal-cli-rest-api at `api_base`, sending and receiving as the registered `number`."""

    api_base: str
    number: str
    receive_mode: ReceiveMode = "websocket"
    poll_seconds: float = 1.0
    # Signal publishes no sending rate; bursts make it ask the account for a captcha.
    rate_per_second: float | None = 1.0

    @property
    def send_url(self) -> str:
        return f"{self.api_base.rstrip('/')}/v2/send"

    @property
    def receive_url(self) -> str:
        """GET /v1/receive/{number}: a JSON array (normal/native mode) or a websocket
        (json-rpc mode) at the same path."""
        return f"{self.api_base.rstrip('/')}/v1/receive/{quote(self.number, safe='')}"

    @property
    def websocket_url(self) -> str:
        url = self.receive_url
        if url.startswith("https://"):
            return "wss://" + url.removeprefix("https://")
        return "ws://" + url.removeprefix("http://")

    def attachment_url(self, attachment_id: str) -> str:
        return f"{self.api_base.rstrip('/')}/v1/attachments/{quote(attachment_id, safe='')}"
