"""What the WhatsApp Cloud API adapter needs to know, built by whoever reads the environment."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WhatsAppCloudConfig:
    access_token: str
    phone_number_id: str
    app_secret: str
    verify_token: str
    api_base: str = "https://graph.facebook.com/v21.0"
    rate_per_second: float | None = 80.0
