"""Circuit breakers per channel and sender: a provider that is down costs seconds, not each
message's whole retry budget.

After `threshold` sends in a row to one (channel, sender) end in an outage (the provider
answered 5xx, timed out or could not be reached: `ProviderUnavailable`), its circuit opens:
for `cooldown` seconds no send goes to it, and each row due on it ends as `CircuitOpen`,
which falls back to the supporter's next usable channel at once (and, when there is none,
waits for the circuit instead of failing: routing/dispatch/outcome.py). When the cooldown is
over one probe send is let through; success closes the circuit, another outage opens it
again for twice as long (up to `max_cooldown`). Any answer that is not an outage (sent, a
bad number, throttled) shows the provider is up and resets the count.

The state is this process's; every change of it is also written to `channel_circuits`
(by the dispatcher) so `/healthz` and `/metrics` show it whichever process sends.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from channels.base import ProviderUnavailable, SendError

THRESHOLD = 5
COOLDOWN_SECONDS = 30.0
MAX_COOLDOWN_SECONDS = 300.0

CLOSED = "closed"
OPEN = "open"
PROBING = "probing"

Key = tuple[str, str]  # (channel, sender)


class CircuitOpen(SendError):
    """Not sent: the provider behind this channel and sender is failing. Falls back at
    once; with no other channel, the row waits until `until` (the next probe)."""

    retryable = False
    fallback = True

    def __init__(self, channel: str, until: datetime) -> None:
        super().__init__(
            f"{channel} provider is failing (circuit open); not sent", code="circuit_open"
        )
        self.until = until


@dataclass
class Circuit:
    state: str = CLOSED
    failures: int = 0  # outages in a row
    until: datetime | None = None  # open: no send before this
    cooldown: float = COOLDOWN_SECONDS


@dataclass(frozen=True)
class Change:
    """A circuit's new state, to be written to `channel_circuits`."""

    channel: str
    sender: str
    state: str
    failures: int
    until: datetime | None


def is_outage(error: BaseException | None) -> bool:
    return isinstance(error, ProviderUnavailable)


class Breakers:
    def __init__(
        self,
        clock: Callable[[], datetime],
        *,
        threshold: int = THRESHOLD,
        cooldown: float = COOLDOWN_SECONDS,
        max_cooldown: float = MAX_COOLDOWN_SECONDS,
    ) -> None:
        self.clock = clock
        self.threshold = threshold
        self.cooldown = cooldown
        self.max_cooldown = max_cooldown
        self.circuits: dict[Key, Circuit] = {}

    def admit(self, key: Key) -> tuple[datetime | None, Change | None]:
        """Whether a send to `key` may go now: (None, change) if so, (until, None) if its
        circuit is open (or a probe is already out) until then."""
        circuit = self.circuits.get(key)
        if circuit is None or circuit.state == CLOSED:
            return None, None
        now = self.clock()
        assert circuit.until is not None
        if now >= circuit.until:
            # This send is the probe (again, if the last probe never came back).
            circuit.state = PROBING
            circuit.until = now + timedelta(seconds=circuit.cooldown)
            return None, self._change(key, circuit)
        return circuit.until, None

    def record(self, key: Key, error: BaseException | None) -> Change | None:
        """The outcome of a send admitted for `key`; the change of state, if any."""
        circuit = self.circuits.get(key)
        if not is_outage(error):
            if circuit is None:
                return None
            del self.circuits[key]
            return None if circuit.state == CLOSED else Change(*key, CLOSED, 0, None)
        if circuit is None:
            circuit = self.circuits[key] = Circuit(cooldown=self.cooldown)
        circuit.failures += 1
        if circuit.state == PROBING:
            circuit.cooldown = min(self.max_cooldown, circuit.cooldown * 2)
        elif circuit.state == OPEN or circuit.failures < self.threshold:
            return None  # already open (a send admitted before it opened), or not yet
        circuit.state = OPEN
        circuit.until = self.clock() + timedelta(seconds=circuit.cooldown)
        return self._change(key, circuit)

    @staticmethod
    def _change(key: Key, circuit: Circuit) -> Change:
        return Change(key[0], key[1], circuit.state, circuit.failures, circuit.until)
