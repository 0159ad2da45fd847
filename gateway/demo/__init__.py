"""Demo mode (`rallypoint serve --demo`): the app wired to the in-repo provider fakes on
loopback ports, a seeded organization, and the console's Simulator (a supporter's side
of the conversation). Never on unless asked; the fakes stay in channels/.

`DemoRuntime` is what the app holds as `app.state.demo` in demo mode (and only then):
the console reads it through the small protocol in gateway/console/simulator.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.demo.providers import DemoProviders
from gateway.demo.simulate import CHANNELS, SimulationFailed, Simulator, check_address
from gateway.demo.transcript import Entry

__all__ = ["CHANNELS", "DemoRuntime", "Entry", "SimulationFailed", "check_address"]


@dataclass
class DemoRuntime:
    providers: DemoProviders
    simulator: Simulator

    async def send(self, channel: str, address: str, text: str, name: str) -> str | None:
        """Deliver as the supporter; None, or why not (a sentence for the page)."""
        try:
            await self.simulator.send(channel, address, text, name)
        except ValueError as exc:
            return str(exc)
        except SimulationFailed as exc:
            return f"Not delivered: {exc}."
        return None

    def transcript(self, channel: str, address: str) -> list[Entry]:
        self.providers.observe()
        return self.providers.transcript.between(channel, address)
