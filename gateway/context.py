"""The gateway's view of the running context: routing's, with the gateway's full settings."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.settings import Settings
from routing.context import AppContext


@dataclass
class GatewayContext(AppContext):
    # The same object routing reads as RoutingSettings, with what only the gateway reads
    # (listen address, body limits, background services, the bootstrap key).
    settings: Settings
