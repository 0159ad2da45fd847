"""What the Telegram adapter needs to know, built by whoever reads the environment."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TelegramConfig:
    token: str
    webhook_secret: str
    api_base: str = "https://api.telegram.org"
    rate_per_second: float | None = 30.0
