"""The gateway's view of the running context: routing's, with the gateway's full settings."""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.rate_limit import ApiRateLimiter
from gateway.settings import Settings
from routing.context import AppContext


@dataclass
class GatewayContext(AppContext):
    # The same object routing reads as RoutingSettings, with what only the gateway reads
    # (listen address, body limits, background services, the bootstrap key).
    settings: Settings
    # Requests per API key (RALLYPOINT_API_RATE_PER_MINUTE); made from the settings.
    api_rate: ApiRateLimiter = field(default_factory=lambda: ApiRateLimiter(0))

    def __post_init__(self) -> None:
        self.api_rate = ApiRateLimiter(self.settings.api_rate_per_minute)
