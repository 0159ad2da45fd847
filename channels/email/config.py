"""What the email (SMTP) adapter needs to know, built by whoever reads the environment."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EmailConfig:
    host: str
    sender: str  # the From header, possibly with a display name
    port: int = 587
    username: str | None = None
    password: str | None = None
    starttls: bool = True
    default_subject: str = "Message from Rallypoint"
    rate_per_second: float | None = 10.0
    # Seconds each SMTP command (connect and greeting included) may take.
    timeout: float = 30.0
