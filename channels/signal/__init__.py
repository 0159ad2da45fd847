"""Signal through signal-cli-rest-api: POST /v2/send out, envelopes in by websocket or poll."""

from channels.signal.adapter import SignalAdapter, build_adapter
from channels.signal.config import SignalConfig

__all__ = ["SignalAdapter", "SignalConfig", "build_adapter"]
