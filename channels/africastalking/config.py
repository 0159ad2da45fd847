"""What the Africa's Talking adapter needs to know, built by whoever reads the environment."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class AfricasTalkingConfig:
    username: str
    api_key: str = field(repr=False)
    # Africa's Talking signs no callback: its callback URLs carry this secret in the path.
    callback_secret: str = field(repr=False)
    # A registered short code or alphanumeric sender id, sent as `from`; None: the
    # account's default sender.
    sender_id: str | None = None
    api_base: str = "https://api.africastalking.com"
    # Per-sender sending rate, in SMS segments a second (see AfricasTalkingAdapter.rate_units).
    rate_per_second: float | None = 10.0

    @property
    def messaging_url(self) -> str:
        return f"{self.api_base.rstrip('/')}/version1/messaging"
