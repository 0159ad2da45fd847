"""What the Twilio adapter needs to know, built by whoever reads the environment."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TwilioConfig:
    account_sid: str
    auth_token: str
    sms_from: str | None = None
    messaging_service_sid: str | None = None
    whatsapp_from: str | None = None
    api_base: str = "https://api.twilio.com"
    status_callback_url: str | None = None
    # Per-sender sending rate; SMS counts segments (see TwilioAdapter.rate_units).
    rate_per_second: float | None = 1.0

    @property
    def messages_url(self) -> str:
        return f"{self.api_base.rstrip('/')}/2010-04-01/Accounts/{self.account_sid}/Messages.json"
